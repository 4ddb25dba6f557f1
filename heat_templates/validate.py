#!/usr/bin/python3
"""Validates HOT templates offline with Heat's own code (Debian's python3-heat, Heat 19),
without a running Heat or any OpenStack service:

  validate.py [--json] [-P name=value ...] TEMPLATE...

For each template: heat's template_format.parse, then a Stack built from it and validated
the way `openstack orchestration template validate` does (heat-engine's validate_template:
strict_validate=False, validate_res_tmpl_only=True): template version and sections,
functions, parameter schemas and constraints, every resource's type and properties
schema, conditions, outputs, and the dependency graph (no cycles). What it cannot check
offline: that images, flavors and networks exist (the custom constraints need the
services) -- the real `template validate` does not check those either.

No traffic leaves the process: every socket connect and name lookup raises, and Heat's
"is the service in the catalog" check (which asks Keystone) is skipped.
Exit status 1 when a template is invalid. --json prints one object per template:
{template, params, ok, error, resources, outputs, parameters, depends_on, servers}, and
with --render also "rendered": the user data, metadata and outputs the stack would have
once created, each server at a documentation address (192.0.2.x) on the network.
"""

import argparse
import json
import socket
import sys


def _no_network(*args, **kwargs):
    raise RuntimeError(f"validate.py must not use the network (tried {args[:2]!r})")


def _setup():
    socket.getaddrinfo = _no_network
    socket.socket.connect = _no_network
    import logging

    logging.disable(logging.WARNING)  # Heat logs every hidden/unsupported type it registers
    from oslo_config import cfg

    cfg.CONF([], project="heat", default_config_files=[], default_config_dirs=[])
    from heat.engine import resource, resources

    resources.initialise()
    resource.Resource._validate_service_availability = lambda self, *a, **k: None


def _servers(stack):
    """{resource: {image, flavor}} of each server (and server group), as the parameters
    resolve them: what Nova will be asked for."""
    from heat.engine import function

    out = {}
    for name, res in stack.resources.items():
        props = res.t._properties or {}
        if res.type() == "OS::Heat::ResourceGroup":
            props = function.resolve(props.get("resource_def", {})).get("properties", {})
        elif res.type() != "OS::Nova::Server":
            continue
        out[name] = {k: function.resolve(props.get(k)) for k in ("image", "flavor")}
    return out


def _render(stack, network):
    """What Heat would hand Nova and the user once the stack exists: every server's user
    data and metadata and the stack's outputs, with each server given a documentation
    address (192.0.2.x, RFC 5737) on `network` and each random string "secret-<name>".
    Resources are resolved in dependency order, as heat-engine creates them."""
    from heat.engine import function, node_data, stk_defn

    defn = stack.defn
    out = {"addresses": {}, "servers": {}, "outputs": {}}

    def store(name, attrs):
        stk_defn.update_resource_data(defn, name, node_data.NodeData(
            None, name, f"{name}-uuid", f"{name}-id", attrs, "CREATE", "COMPLETE"))

    def server_props(d):
        props = d._properties or {}
        if d.resource_type == "OS::Heat::ResourceGroup":
            return function.resolve(props.get("resource_def", {})).get("properties", {})
        return props

    for n, res in enumerate(stack.dependencies):
        name = res.name
        d = defn.resource_definition(name)
        if d.resource_type == "OS::Nova::Server":
            props = server_props(d)
            addr = f"192.0.2.{10 + n}"
            out["addresses"][name] = addr
            out["servers"][name] = {k: function.resolve(props.get(k))
                                    for k in ("user_data", "metadata")}
            store(name, {("networks", network, 0): addr, "networks": {network: [addr]}})
        elif d.resource_type == "OS::Heat::ResourceGroup":
            props = server_props(d)
            addr = f"192.0.2.{10 + n}"
            out["addresses"][name] = addr
            out["servers"][name] = {k: function.resolve(props.get(k))
                                    for k in ("user_data", "metadata")}
            store(name, {"networks": [{network: [addr]}], "refs": [f"{name}-0-uuid"]})
        elif d.resource_type == "OS::Heat::RandomString":
            store(name, {"value": f"secret-{name}"})
        elif d.resource_type == "OS::Heat::Value":
            store(name, {"value": function.resolve((d._properties or {}).get("value"))})
        else:
            store(name, {})
    for name in defn.enabled_output_names():
        out["outputs"][name] = function.resolve(defn.output_definition(name)._value)
    return out


def validate(path, params, render=False):
    from heat.common import context, template_format
    from heat.engine import environment
    from heat.engine import stack as parser
    from heat.engine import template

    result = {"template": path, "params": params, "ok": False}
    try:
        with open(path) as f:
            tmpl_dict = template_format.parse(f.read())
        tmpl = template.Template(tmpl_dict, env=environment.Environment(params))
        ctx = context.RequestContext(user_id="validate", project_id="validate",
                                     is_admin=False, auth_token="none")
        stack = parser.Stack(ctx, "validate", tmpl, strict_validate=False)
        stack.validate(validate_res_tmpl_only=True)
        result["resources"] = {name: res.type() for name, res in stack.resources.items()}
        result["outputs"] = sorted(tmpl_dict.get("outputs", {}))
        result["parameters"] = sorted(tmpl_dict.get("parameters", {}))
        result["servers"] = _servers(stack)
        if render:
            result["rendered"] = _render(stack, params.get("network", ""))
        graph = stack.dependencies.graph()
        result["depends_on"] = {r.name: sorted(d.name for d in deps)
                                for r, deps in graph.items()}
        result["ok"] = True
    except Exception as e:  # noqa: BLE001 - every failure is a validation result
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-P", "--parameter", action="append", default=[],
                    help="name=value, as for openstack stack create")
    ap.add_argument("--render", action="store_true",
                    help="with --json: also the user data, metadata and outputs the stack "
                         "would have, servers at 192.0.2.x")
    ap.add_argument("templates", nargs="+")
    args = ap.parse_args(argv)
    params = {}
    for p in args.parameter:
        name, sep, value = p.partition("=")
        if not sep:
            ap.error(f"-P {p}: want name=value")
        params[name] = value
    _setup()
    ok = True
    for path in args.templates:
        r = validate(path, params, render=args.render)
        ok = ok and r["ok"]
        if args.json:
            print(json.dumps(r, sort_keys=True))
        else:
            print(f"{path}: " + ("valid" if r["ok"] else f"INVALID: {r['error']}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
