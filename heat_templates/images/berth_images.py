#!/usr/bin/python3
"""The two pieces of build.sh that shell does badly.

  berth_images.py closure [--exclude P,...] PKG...
  berth_images.py closures [--exclude P,...] SET=PKG,PKG... ...   (prints "SET name=version")
      Prints "name=version" for PKG and everything it Depends/Pre-Depends on, from apt's
      cache (python3-apt), stopping at the excluded packages (maintainer-script machinery
      that a container never runs). The first installable alternative of an or-group wins;
      a virtual package resolves to its first provider.

  berth_images.py layer --out FILE LAYER_DIR
      Writes one layer tar. Layers are reproducible (sorted entries, mtime 0, owner root),
      so the same directory gives the same digest in every image and Berth's store keeps
      it once.

  berth_images.py archive --out FILE --tag NAME:TAG --config JSON LAYER...
      Writes a docker-archive (the format of `docker save`: manifest.json, the image config,
      one uncompressed tar per layer), bottom layer first; a LAYER is a directory or a tar
      that `layer` wrote (so a layer shared by several images is tarred once).

  berth_images.py rootfs-tar --out FILE LAYER_DIR...
      One plain tar of the layers merged (upper wins): Berth's rootfs-tar format.
"""

import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile


def closures(sets, exclude):
    """Prints "SET name=version" for each NAME=PKG,PKG... set: one apt cache load for all."""
    import apt_pkg  # python3-apt; imported here so `archive` needs nothing outside stdlib

    apt_pkg.init()
    cache = apt_pkg.Cache(progress=None)
    depcache = apt_pkg.DepCache(cache)
    for spec in sets:
        name, _, pkgs = spec.partition("=")
        for line in _closure(cache, depcache, pkgs.split(","), exclude):
            print(f"{name} {line}")


def closure(packages, exclude):
    import apt_pkg

    apt_pkg.init()
    cache = apt_pkg.Cache(progress=None)
    for line in _closure(cache, apt_pkg.DepCache(cache), packages, exclude):
        print(line)


def _closure(cache, depcache, packages, exclude):
    import apt_pkg

    arch = apt_pkg.config.find("APT::Architecture")

    def candidate(name):
        for key in ((name, arch), (name, "all"), name):
            try:
                pkg = cache[key]
            except KeyError:
                continue
            ver = depcache.get_candidate_ver(pkg)
            if ver is not None:
                return ver
            if pkg.has_provides:  # virtual: take the first real provider
                return pkg.provides_list[0][2]
        return None

    chosen = {}
    names = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name in names or name in exclude:
            continue
        ver = candidate(name)
        if ver is None:
            raise SystemExit(f"closure: no installable candidate for {name}")
        names.add(name)
        names.add(ver.parent_pkg.name)
        chosen[ver.parent_pkg.name] = ver.ver_str
        for kind in ("PreDepends", "Depends"):
            for group in ver.depends_list.get(kind, []):
                alternatives = [d.target_pkg.name for d in group]
                if any(a in names or a in exclude for a in alternatives):
                    continue
                todo.append(alternatives[0])
    return [f"{name}={chosen[name]}" for name in sorted(chosen)]


def _walk(root):
    """(archive name, path) for every entry under root, parents before children, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            out.append((rel, dirpath))
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            out.append((os.path.normpath(os.path.join(rel, f)), path))
        # os.walk does not descend into symlinked dirs but lists them in dirnames
        for d in list(dirnames):
            path = os.path.join(dirpath, d)
            if os.path.islink(path):
                out.append((os.path.normpath(os.path.join(rel, d)), path))
                dirnames.remove(d)
    return sorted(out)


def _tarinfo(name, path):
    st = os.lstat(path)
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = 0
    if stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        ti.size = st.st_size
    else:
        raise SystemExit(f"archive: {path}: only files, directories and symlinks go in images")
    return ti


def _write_tree(tar, entries):
    for name, path in entries:
        ti = _tarinfo(name, path)
        if ti.isreg():
            with open(path, "rb") as f:
                tar.addfile(ti, f)
        else:
            tar.addfile(ti)


def layer_tar(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _write_tree(tar, _walk(root))
    return buf.getvalue()


def archive(out, tag, config, layers):
    blobs = []
    diff_ids = []
    for d in layers:
        if os.path.isdir(d):
            data = layer_tar(d)
        else:
            with open(d, "rb") as f:
                data = f.read()
        digest = hashlib.sha256(data).hexdigest()
        blobs.append((f"{digest}/layer.tar", data))
        diff_ids.append(f"sha256:{digest}")
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "heat_templates/images/build.sh: "
                                   + os.path.splitext(os.path.basename(d))[0]}
                    for d in layers],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag],
                 "Layers": [name for name, _ in blobs]}]
    files = [(config_name, config_bytes)] + blobs + [
        ("manifest.json", json.dumps(manifest).encode())]
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    os.replace(tmp, out)
    print(f"{out}: {tag}, {len(layers)} layers, config sha256:{config_name[:-5]}")


def rootfs_tar(out, layers):
    merged = {}
    for d in layers:
        for name, path in _walk(d):
            merged[name] = path
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _write_tree(tar, sorted(merged.items()))
    os.replace(tmp, out)
    print(f"{out}: rootfs tar of {len(layers)} layers")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("closure")
    c.add_argument("--exclude", default="")
    c.add_argument("packages", nargs="+")
    cs = sub.add_parser("closures")
    cs.add_argument("--exclude", default="")
    cs.add_argument("sets", nargs="+")
    a = sub.add_parser("archive")
    a.add_argument("--out", required=True)
    a.add_argument("--tag", required=True)
    a.add_argument("--config", required=True, help="the image config's 'config' object, JSON")
    a.add_argument("layers", nargs="+")
    lay = sub.add_parser("layer")
    lay.add_argument("--out", required=True)
    lay.add_argument("layer")
    r = sub.add_parser("rootfs-tar")
    r.add_argument("--out", required=True)
    r.add_argument("layers", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "closure":
        closure(args.packages, set(filter(None, args.exclude.split(","))))
    elif args.cmd == "closures":
        closures(args.sets, set(filter(None, args.exclude.split(","))))
    elif args.cmd == "layer":
        data = layer_tar(args.layer)
        with open(args.out + ".tmp", "wb") as f:
            f.write(data)
        os.replace(args.out + ".tmp", args.out)
    elif args.cmd == "archive":
        archive(args.out, args.tag, json.loads(args.config), args.layers)
    else:
        rootfs_tar(args.out, args.layers)


if __name__ == "__main__":
    main(sys.argv[1:])
