"""berthd's REST API, and the only module that knows it.

One method per call. Every call has a connect and a read timeout; failures are the typed
exceptions of nova_berth.exception (404 -> BerthNotFound, 409 -> BerthConflict, ...), never
a bare requests error. Nothing here knows Nova: the driver translates.

Contract (docs/api.md): JSON bodies, `X-Auth-Token` on every call but /healthz, errors as
{"error": {"code": N, "kind": "...", "message": "..."}} (kind: not_found, no_route,
invalid_state with "power_state", ...), power states in Nova's codes.
"""

import json
import threading
import urllib.parse

import requests

from nova_berth import exception as exc

# Nova's power_state codes as berthd reports them (nova/compute/power_state.py).
NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7
POWER_STATES = (NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED)

# Seconds added to an action's own timeout (a stop's grace period) for the HTTP read.
_ACTION_MARGIN = 30.0


def _q(segment):
    return urllib.parse.quote(str(segment), safe="")


class BerthClient(object):
    """A berthd endpoint.

    token: the admin token; when None, read from token_file (and re-read once when
    berthd answers 401, so a rotated token is picked up without restarting Nova).
    timeout: read timeout for ordinary calls; spawn_timeout and snapshot_timeout for the
    two calls that may move an image through Glance.
    """

    def __init__(self, api_url="http://127.0.0.1:8780", token=None, token_file=None,
                 connect_timeout=5.0, timeout=60.0, spawn_timeout=900.0,
                 snapshot_timeout=1800.0, session=None):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._token_from_file = token is None
        self.token_file = token_file
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.spawn_timeout = spawn_timeout
        self.snapshot_timeout = snapshot_timeout
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._routes = None

    # -- plumbing ---------------------------------------------------------------------

    def _load_token(self):
        if not self.token_file:
            raise exc.BerthUnauthorized(
                "no berthd token configured ([berth] token or token_file)")
        try:
            with open(self.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise exc.BerthUnauthorized(
                f"cannot read the berthd token file {self.token_file}: {e.strerror}")
        if not token:
            raise exc.BerthUnauthorized(f"berthd token file {self.token_file} is empty")
        return token

    def _current_token(self, reload=False):
        with self._lock:
            if self._token is None or (reload and self._token_from_file):
                self._token = self._load_token()
            return self._token

    def request(self, method, path, body=None, params=None, timeout=None, auth=True,
                data=None, headers=None, raw=False):
        """One call. Returns the decoded JSON (None for 204), or the Response if raw."""
        url = self.api_url + path
        hdrs = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        read_timeout = self.timeout if timeout is None else timeout
        token_attempts = 2 if (auth and self._token_from_file) else 1
        token_attempt = 0
        timed_out_idle = False
        while True:
            if auth:
                hdrs["X-Auth-Token"] = self._current_token(reload=token_attempt > 0)
            try:
                resp = self._session.request(method, url, data=data, params=params,
                                             headers=hdrs,
                                             timeout=(self.connect_timeout, read_timeout))
            except requests.Timeout as e:
                raise exc.BerthTimeout(f"no answer within {read_timeout:g} s ({e})",
                                       method=method, path=path)
            except requests.RequestException as e:
                raise exc.BerthConnectionError(f"cannot reach {self.api_url}: {e}",
                                               method=method, path=path)
            if resp.status_code == 401 and token_attempt + 1 < token_attempts:
                token_attempt += 1
                continue  # the token file may have been rotated: read it again
            if resp.status_code == 408 and not timed_out_idle:
                # Pistache times out a kept-alive connection by its age and answers 408 to
                # the request that arrives as it does (pistacheio/pistache#1030): that
                # request was never read, so sending it again on a new connection is safe.
                timed_out_idle = True
                continue
            break
        if resp.status_code >= 400:
            raise self._error(resp, method, path)
        if raw:
            return resp
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise exc.BerthBadResponse(
                f"answer is not JSON: {resp.text[:200]!r}", status=resp.status_code,
                method=method, path=path)

    @staticmethod
    def _error(resp, method, path):
        message = None
        kind = None
        try:
            err = resp.json().get("error", {})
            message = err.get("message")
            kind = err.get("kind")
        except (ValueError, AttributeError):
            pass
        if not message:
            message = resp.text.strip()[:500] or resp.reason or "error"
        cls = exc.for_status(resp.status_code)
        # An unknown route (404 kind "no_route") or a wrong method on a known one (405) is a
        # berthd without the call, not a missing instance (404 kind "not_found"). Older
        # berthds had no "kind": their router's message says "no route for".
        if kind in ("no_route", "method_not_allowed") or resp.status_code == 405 or (
                kind is None and resp.status_code == 404
                and message.startswith("no route for")):
            cls = exc.BerthNotSupported
        return cls(message, status=resp.status_code, method=method, path=path, kind=kind)

    # -- service ----------------------------------------------------------------------

    def healthz(self):
        """True when berthd answers /healthz."""
        resp = self.request("GET", "/healthz", auth=False, raw=True)
        return resp.status_code == 200

    def versions(self):
        return self.request("GET", "/v1")

    def routes(self, refresh=False):
        """Set of ("GET", "/v1/instances/{uuid}") pairs this berthd serves (cached)."""
        if self._routes is None or refresh:
            doc = self.request("GET", "/v1/openapi.json")
            routes = set()
            for path, methods in (doc or {}).get("paths", {}).items():
                for m in methods:
                    routes.add((m.upper(), path))
            self._routes = routes
        return self._routes

    def supports(self, method, path):
        try:
            return (method.upper(), path) in self.routes()
        except exc.BerthNotSupported:
            return False

    def host(self):
        """GET /v1/host: vcpus/memory_mb/disk_gb {total, used, free}, hostname, ..."""
        return self.request("GET", "/v1/host")

    # -- images -----------------------------------------------------------------------

    def list_images(self):
        return self.request("GET", "/v1/images")["images"]

    def get_image(self, ref):
        return self.request("GET", "/v1/images/" + _q(ref))

    def delete_image(self, ref):
        self.request("DELETE", "/v1/images/" + _q(ref))

    def import_image(self, archive, fmt="auto", name=None, timeout=None):
        """Imports an archive given as bytes or a binary file object."""
        params = {"format": fmt}
        if name:
            params["name"] = name
        return self.request("POST", "/v1/images", data=archive, params=params,
                            headers={"Content-Type": "application/x-tar"},
                            timeout=timeout or self.spawn_timeout)

    def import_image_path(self, path, fmt="auto", name=None, timeout=None):
        """Imports a file that is on berthd's host."""
        body = {"path": path, "format": fmt}
        if name:
            body["name"] = name
        return self.request("POST", "/v1/images", body=body,
                            timeout=timeout or self.spawn_timeout)

    # -- instances --------------------------------------------------------------------

    def list_instances(self):
        return self.request("GET", "/v1/instances")["instances"]

    def get_instance(self, uuid):
        return self.request("GET", "/v1/instances/" + _q(uuid))

    def create_instance(self, uuid, image, flavor, name=None, hostname=None, metadata=None,
                        user_data=None, command=None, network_info=None, glance=None,
                        token=None, start=True):
        """POST /v1/instances; answers when the container runs (or has failed and been
        rolled back).

        image: the Glance image id (berthd resolves it in its store, or through Glance);
        flavor: as flavor.to_berth_flavor makes it; glance: what Nova knows of the image
        (id, name, container_format, disk_format, checksum, size, os_hash_algo,
        os_hash_value when known); network_info: Nova's network_info as JSON-able list;
        token: the request's Keystone token, for berthd's Glance download;
        start: False leaves the container created with its network attached and its
        process not started (the driver starts it once Neutron reported the ports up).
        """
        body = {"uuid": uuid, "image": image, "flavor": flavor}
        optional = {"name": name, "hostname": hostname, "metadata": metadata,
                    "user_data": user_data, "command": command,
                    "network_info": network_info, "glance": glance, "token": token}
        body.update({k: v for k, v in optional.items() if v is not None})
        if not start:
            body["start"] = False
        return self.request("POST", "/v1/instances", body=body, timeout=self.spawn_timeout)

    def attach_interface(self, uuid, vif):
        """POST /v1/instances/{uuid}/interfaces with a Nova VIF (JSON-able dict)."""
        return self.request("POST", "/v1/instances/%s/interfaces" % _q(uuid), body=vif)

    def detach_interface(self, uuid, port_id):
        self.request("DELETE", "/v1/instances/%s/interfaces/%s" % (_q(uuid), _q(port_id)))

    def rebuild(self, uuid, image, command=None, timeout=None, glance=None, token=None):
        """The rebuild action: a new root from `image`, same uuid and network. `image` may
        be a Glance id (berthd syncs it as for a spawn, with `token` and the `glance`
        hints)."""
        fields = {"image": image}
        if command is not None:
            fields["command"] = command
        if timeout is not None:
            fields["timeout"] = timeout
        if glance is not None:
            fields["glance"] = glance
        if token:
            fields["token"] = token
        return self.action(uuid, "rebuild", http_timeout=self.spawn_timeout, **fields)

    def delete_instance(self, uuid):
        self.request("DELETE", "/v1/instances/" + _q(uuid))

    def action(self, uuid, action, http_timeout=None, **fields):
        body = dict(fields, action=action)
        return self.request("POST", "/v1/instances/%s/action" % _q(uuid), body=body,
                            timeout=http_timeout)

    def start(self, uuid):
        return self.action(uuid, "start")

    def stop(self, uuid, timeout=None):
        """Stop signal, then SIGKILL after `timeout` s (None: berthd's default)."""
        fields = {} if timeout is None else {"timeout": int(timeout)}
        return self.action(uuid, "stop", http_timeout=self._grace(timeout), **fields)

    def reboot(self, uuid, hard=False, timeout=None):
        fields = {"type": "HARD" if hard else "SOFT"}
        if timeout is not None and not hard:
            fields["timeout"] = int(timeout)
        return self.action(uuid, "reboot", http_timeout=self._grace(timeout), **fields)

    def pause(self, uuid):
        return self.action(uuid, "pause")

    def unpause(self, uuid):
        return self.action(uuid, "unpause")

    def suspend(self, uuid):
        return self.action(uuid, "suspend")

    def resume(self, uuid):
        return self.action(uuid, "resume")

    def resize(self, uuid, flavor):
        """New limits for the instance, live when it runs. `flavor` as in spawn."""
        return self.action(uuid, "resize", flavor=flavor)

    def console(self, uuid, lines=100):
        out = self.request("GET", "/v1/instances/%s/console" % _q(uuid),
                           params={"lines": int(lines)})
        return out.get("output", "")

    def stats(self, uuid):
        return self.request("GET", "/v1/instances/%s/stats" % _q(uuid))

    def exec(self, uuid, command, env=None, cwd=None):
        body = {"command": list(command)}
        if env:
            body["env"] = list(env)
        if cwd:
            body["cwd"] = cwd
        return self.request("POST", "/v1/instances/%s/exec" % _q(uuid), body=body)

    def snapshot(self, uuid, image_id, name=None, token=None, container_format=None,
                 disk_format=None, properties=None):
        """POST .../snapshot: berthd commits the instance's disk as a new image and
        uploads it into the (queued) Glance image `image_id`. Raises BerthNotSupported on
        a berthd without it."""
        body = {"image_id": image_id}
        optional = {"name": name, "token": token, "container_format": container_format,
                    "disk_format": disk_format, "properties": properties}
        body.update({k: v for k, v in optional.items() if v is not None})
        return self.request("POST", "/v1/instances/%s/snapshot" % _q(uuid), body=body,
                            timeout=self.snapshot_timeout)

    def supports_snapshot(self):
        return self.supports("POST", "/v1/instances/{uuid}/snapshot")

    def _grace(self, timeout):
        stop_wait = self.timeout if timeout is None else float(timeout)
        return max(self.timeout, stop_wait + _ACTION_MARGIN)
