"""A real berthd for the Python tests: started on 127.0.0.1 (port 0) with a temporary
state dir and cgroup parent, a busybox image imported, and stopped by its pid.

The binary: $BERTH_BUILD_DIR/driver/server/berthd if BERTH_BUILD_DIR is set, else
/work/main/build/driver/server/berthd. Needs root (namespaces, cgroups, overlay mounts).
Everything it makes is named berth-test-*, and stop() removes it: instances, cgroups,
mounts, the temp dir.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

from nova_berth import client as berth_client
from nova_berth import exception as berth_exc

DEFAULT_BUILD_DIR = "/work/main/build"
BUSYBOX = "/bin/busybox"
# The instance's process: says hello on its console and stops cleanly on SIGTERM.
BUSYBOX_CMD = ["/bin/sh", "-c",
               "echo booted $(hostname); trap 'echo bye; exit 0' TERM; "
               "while :; do sleep 0.2; done"]


def berthd_binary():
    build = os.environ.get("BERTH_BUILD_DIR", DEFAULT_BUILD_DIR)
    return os.path.join(build, "driver", "server", "berthd")


def missing_reason():
    """Why the real-berthd tests cannot run here, or None."""
    path = berthd_binary()
    if not os.access(path, os.X_OK):
        return ("berthd not built at %s (build it: ninja -C <build> berthd, or set "
                "BERTH_BUILD_DIR)" % path)
    if not os.access(BUSYBOX, os.X_OK):
        return "busybox-static is not installed (%s)" % BUSYBOX
    return None


def _add(tar, name, type_, data=b"", mode=0o755, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.mtime = 0
    info.linkname = linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)


def busybox_layer():
    """A one-layer root filesystem: busybox-static and a link for each applet."""
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "mnt", "usr",
                  "usr/bin"):
            _add(tar, d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", tarfile.REGTYPE, binary)
        for a in applets:
            if a != "busybox":
                _add(tar, "bin/" + a, tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _add(tar, "etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n",
             mode=0o644)
        _add(tar, "etc/group", tarfile.REGTYPE, b"root:x:0:\n", mode=0o644)
    return buf.getvalue()


def busybox_docker_archive(cmd=None):
    """A docker-archive (`docker save` layout) of busybox with Cmd set."""
    layer = busybox_layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": cmd or BUSYBOX_CMD, "Env": ["PATH=/bin:/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["busybox:berth-test"],
                            "Layers": [layer_name]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, diff_id[7:], tarfile.DIRTYPE)
        _add(tar, layer_name, tarfile.REGTYPE, layer, mode=0o644)
        _add(tar, config_name, tarfile.REGTYPE, config, mode=0o644)
        _add(tar, "manifest.json", tarfile.REGTYPE, manifest, mode=0o644)
    return buf.getvalue()


class Berthd(object):
    def __init__(self):
        self.dir = None
        self.proc = None
        self.port = None
        self.token = None
        self.cgroup_parent = "berth-test-py-%d" % os.getpid()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def client(self, **kw):
        return berth_client.BerthClient(self.url, token=self.token, **kw)

    def start(self, timeout=20):
        self.dir = tempfile.mkdtemp(prefix="berth-test-nova-")
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "berthd.conf")
        with open(conf, "w") as f:
            f.write("[DEFAULT]\nstate_dir = %s/state\nrun_dir = %s/run\nlog_level = info\n"
                    "[api]\nlisten = 127.0.0.1\nport = 0\ntoken_file = %s/admin-token\n"
                    "threads = 4\n[instances]\ncgroup_parent = %s\n"
                    "default_stop_timeout = 5\n"
                    % (self.dir, self.dir, self.dir, self.cgroup_parent))
        # berthd maps each instance's root to a range of the berth user's subordinate ids.
        subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                     "scripts", "berth_user.sh")], check=True)
        out = os.path.join(self.dir, "berthd.out")
        with open(out, "wb") as o, open(os.path.join(self.dir, "berthd.err"), "wb") as e:
            self.proc = subprocess.Popen([berthd_binary(), "--config", conf], stdout=o,
                                         stderr=e, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        marker = "listening on 127.0.0.1:"
        while time.monotonic() < deadline:
            with open(out) as f:
                text = f.read()
            if marker in text and text.endswith("\n"):
                self.port = int(text.split(marker, 1)[1].split()[0])
                with open(os.path.join(self.dir, "admin-token")) as f:
                    self.token = f.read().strip()
                return self
            if self.proc.poll() is not None:
                log = self.log()
                self.stop()
                raise RuntimeError("berthd exited at start:\n" + log)
            time.sleep(0.02)
        log = self.log()
        self.stop()
        raise RuntimeError("berthd did not start listening:\n" + log)

    def log(self):
        try:
            with open(os.path.join(self.dir, "berthd.err")) as f:
                return f.read()
        except OSError:
            return ""

    def import_busybox(self, names):
        c = self.client(timeout=120)
        archive = busybox_docker_archive()
        image = None
        for name in names:
            image = c.import_image(archive, fmt="docker-archive", name=name)
        return image

    def delete_all_instances(self):
        """Deletes every instance; returns how many could not be deleted."""
        if self.proc is None or self.proc.poll() is not None:
            return 0
        c = self.client(timeout=60)
        failed = 0
        for inst in c.list_instances():
            try:
                c.delete_instance(inst["uuid"])
            except berth_exc.BerthNotFound:
                pass
            except berth_exc.BerthError:
                failed += 1
        return failed

    def stop(self):
        """Deletes the instances, stops berthd (its pid), removes what it left."""
        if self.proc is not None:
            try:
                self.delete_all_instances()
            except berth_exc.BerthError:
                pass
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        self._remove_leftovers()

    def _remove_leftovers(self):
        if self.dir:
            with open("/proc/self/mountinfo") as f:
                mounts = [line.split()[4] for line in f]
            for m in sorted((m for m in mounts if m.startswith(self.dir)), reverse=True):
                subprocess.run(["umount", "-l", m], check=False)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        root = "/sys/fs/cgroup"
        for ctrl in os.listdir(root) if os.path.isdir(root) else []:
            parent = os.path.join(root, ctrl, self.cgroup_parent)
            if os.path.isdir(parent):
                for child in os.listdir(parent):
                    if os.path.isdir(os.path.join(parent, child)):
                        try:
                            os.rmdir(os.path.join(parent, child))
                        except OSError:
                            pass
                try:
                    os.rmdir(parent)
                except OSError:
                    pass
