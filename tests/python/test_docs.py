"""The operator's documentation against the code it describes: every berthd.conf option
(driver/server/config.cc) with its default (config.h) in docs/configuration.md, every REST
route (ApiServer::Routes() in server.cc) in docs/api.md, every CLI command
(driver/cli/main.cc) in docs/cli.md, and no dead relative link in README.md or docs/."""

import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def config_options():
    """{(section, option): field} from the setter table of config.cc."""
    src = read("driver", "server", "config.cc")
    table = src[src.index("kSetters"):src.index("return kSetters")]
    out = {}
    for m in re.finditer(r'\{"(\w+)\.(\w+)",(.*?)(?=\{"\w+\.\w+",|\Z)', table, re.S):
        field = re.search(r"\bc\.(\w+)\s*=", m.group(3))
        assert field, f"no field assigned for {m.group(1)}.{m.group(2)}"
        out[(m.group(1), m.group(2))] = field.group(1)
    return out


def config_defaults():
    """{field: default as text} from the struct in config.h ("" when not initialised)."""
    src = read("driver", "server", "config.h")
    start = src.index("struct Config {")
    struct = src[start:src.index("\n};", start)]  # the struct's own end, not a "= {...};"
    out = {}
    for m in re.finditer(r"^\s*[\w:<>]+\s+(\w+)(?:\s*=\s*([^;]+))?;", struct, re.M):
        value = (m.group(2) or "").strip()
        if value.startswith('"'):
            value = value.strip('"')
        elif value in ("true", "false"):
            pass
        elif value.startswith("{"):  # a list: {"admin"} -> admin, as the INI writes it
            value = ", ".join(re.findall(r'"([^"]*)"', value))
        elif value:
            value = str(eval(re.sub(r"\w+\{(\d+)\}", r"\1", value)))  # 1 << 20, uint64_t{1} << 30
        out[m.group(1)] = value
    return out


def documented_options():
    rows = {}
    for m in re.finditer(r"^\| `\[(\w+)\]` \| `(\w+)` \| (.*?) \|", read("docs", "configuration.md"),
                         re.M):
        default = m.group(3)
        rows[(m.group(1), m.group(2))] = "" if default == "(none)" else default.strip("`")
    return rows


def test_every_config_option_documented_with_its_default():
    options = config_options()
    defaults = config_defaults()
    docs = documented_options()
    assert len(options) >= 18
    missing = sorted(set(options) - set(docs))
    assert not missing, f"options not in docs/configuration.md: {missing}"
    stale = sorted(set(docs) - set(options))
    assert not stale, f"docs/configuration.md lists options berthd does not have: {stale}"
    for key, field in options.items():
        assert docs[key] == defaults[field], f"{key}: docs say {docs[key]!r}, config.h {defaults[field]!r}"


def test_example_config_lists_every_option():
    text = read("etc", "berthd.conf.example")
    for section, option in config_options():
        assert re.search(rf"^#?\s*{option}\s*=", text, re.M), f"[{section}] {option}"


def routes():
    src = read("driver", "server", "server.cc")
    table = src[src.index("ApiServer::Routes()"):src.index("return kRoutes")]
    return [(m.group(1).upper(), re.sub(r":(\w+)", r"{\1}", m.group(2)))
            for m in re.finditer(r'\{Method::(\w+),\s*"([^"]+)"', table)]


def test_every_route_in_api_doc():
    doc = read("docs", "api.md")
    found = routes()
    assert len(found) >= 18
    for method, path in found:
        assert f"`{method} {path}" in doc or re.search(
            rf"`{method}[^`]*{re.escape(path)}`", doc), f"{method} {path} not in docs/api.md"


def cli_binary():
    build = os.environ.get("BERTH_BUILD_DIR", "/work/main/build")
    path = os.path.join(build, "driver", "cli", "berth")
    return path if os.access(path, os.X_OK) else None


def help_subcommands(*args):
    out = subprocess.run([cli_binary(), *args, "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    section = out.split("Subcommands:", 1)[1] if "Subcommands:" in out else ""
    return re.findall(r"^  (\S+)\s", section, re.M)


def cli_commands():
    """Every `berth` command: from the built binary's --help when there is one, else from
    the source (main.cc's command table: {"name", "help", ...} entries and the simple
    actions' list)."""
    if cli_binary():
        return set(help_subcommands())
    src = read("driver", "cli", "main.cc")
    out = set(re.findall(r'^\s*\{"([a-z]+)",\s*"', src, re.M))
    for lst in re.findall(r'for \(const char\* verb : \{([^}]*)\}\)', src):
        out |= set(re.findall(r'"(\w+)"', lst))
    return out


def test_every_cli_command_in_cli_doc():
    doc = read("docs", "cli.md")
    commands = cli_commands()
    assert {"import", "exec", "resume", "stop", "host", "ps", "run", "logs"} <= commands, commands
    for cmd in sorted(commands):
        assert f"berth {cmd}" in doc, f"`berth {cmd}` not in docs/cli.md"


def markdown_files():
    files = ["README.md", os.path.join("devstack", "README.md"),
             os.path.join("heat_templates", "README.md")]
    files += [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(REPO, "docs")))
              if f.endswith(".md")]
    return files


@pytest.mark.parametrize("md", markdown_files())
def test_relative_links_resolve(md):
    text = read(md)
    base = os.path.dirname(os.path.join(REPO, md))
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"\w+://", target) or target.startswith("mailto:"):
            continue
        path = os.path.normpath(os.path.join(base, target))
        if not path.startswith(REPO + os.sep):
            continue  # outside the repository (e.g. ../shared/DESIGN.md): not ours to check
        assert os.path.exists(path), f"{md}: dead link {target}"


def test_docs_index_links_every_page():
    index = read("docs", "README.md")
    for f in os.listdir(os.path.join(REPO, "docs")):
        if f.endswith(".md") and f != "README.md":
            assert f"({f})" in index, f"docs/README.md does not link {f}"
    assert "(docs/README.md)" in read("README.md")
