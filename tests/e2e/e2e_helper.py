#!/usr/bin/python3
"""The parts of the end-to-end OpenStack script that are quicker in Python than with the
openstack CLI (each CLI call costs ~2 s of start-up on this machine):

  keystone-setup            service project, users, roles, catalog, Heat's domain
  busybox-archive OUT       the demo image as a docker-archive (busybox-static)
  wait-server ID STATUS     poll Nova every 0.1 s until the server has STATUS and no task
                            state; prints the seconds since --since (epoch) or the call
  wait-image ID STATUS      the same for a Glance image
  boot-timed                create -> ACTIVE and delete through the compute API, timed
  server-port ID            the server's Neutron port: id, MAC, IPv4, status, binding
  server-ports ID           each of its ports: id, MAC, IPv4, status

Credentials come from the usual OS_* variables (the script exports them).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def session():
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    auth = v3.Password(auth_url=os.environ["OS_AUTH_URL"],
                       username=os.environ["OS_USERNAME"],
                       password=os.environ["OS_PASSWORD"],
                       project_name=os.environ["OS_PROJECT_NAME"],
                       user_domain_name=os.environ.get("OS_USER_DOMAIN_NAME", "Default"),
                       project_domain_name=os.environ.get("OS_PROJECT_DOMAIN_NAME",
                                                          "Default"))
    return ks_session.Session(auth=auth)


def keystone_setup(args):
    from keystoneclient.v3 import client
    ks = client.Client(session=session())
    region = args.region
    password = args.password

    def one(manager, name, **kw):
        found = [x for x in manager.list(**kw.pop("list_kw", {})) if x.name == name]
        return found[0] if found else manager.create(name=name, **kw)

    default = ks.domains.get("default")
    service = one(ks.projects, "service", domain=default, list_kw={"domain": default})
    admin_role = one(ks.roles, "admin")
    for r in ("member", "reader", "heat_stack_owner", "heat_stack_user"):
        one(ks.roles, r)
    for u in ("glance", "placement", "nova", "neutron", "heat"):
        user = one(ks.users, u, domain=default, password=password,
                   list_kw={"domain": default})
        ks.users.update(user, password=password)  # a rerun with another password
        ks.roles.grant(admin_role, user=user, project=service)
    admin = [u for u in ks.users.list(domain=default) if u.name == "admin"][0]
    admin_project = [p for p in ks.projects.list(domain=default) if p.name == "admin"][0]
    ks.roles.grant(one(ks.roles, "heat_stack_owner"), user=admin, project=admin_project)

    # Heat's domain for the users it makes for stacks.
    heat_domain = one(ks.domains, "heat", description="Heat stack projects and users")
    heat_admin = one(ks.users, "heat_domain_admin", domain=heat_domain, password=password,
                     list_kw={"domain": heat_domain})
    ks.users.update(heat_admin, password=password)
    ks.roles.grant(admin_role, user=heat_admin, domain=heat_domain)

    catalog = {
        ("glance", "image"): "http://127.0.0.1:9292",
        ("placement", "placement"): "http://127.0.0.1:8778",
        ("nova", "compute"): "http://127.0.0.1:8774/v2.1",
        ("neutron", "network"): "http://127.0.0.1:9696",
        ("heat", "orchestration"): "http://127.0.0.1:8004/v1/%(tenant_id)s",
    }
    for (name, type_), url in catalog.items():
        svc = [s for s in ks.services.list() if s.type == type_]
        svc = svc[0] if svc else ks.services.create(name=name, type=type_)
        have = {e.interface: e for e in ks.endpoints.list(service=svc)}
        for iface in ("public", "internal", "admin"):
            if iface in have:
                if have[iface].url != url:
                    ks.endpoints.update(have[iface], url=url)
            else:
                ks.endpoints.create(service=svc, url=url, interface=iface, region=region)
    print("keystone: service project, 5 service users, heat domain, %d services"
          % len(catalog))


def busybox_archive(args):
    sys.path[:0] = [os.path.join(REPO, "tests", "python"), os.path.join(REPO, "driver", "nova")]
    import berthd_process
    cmd = ["/bin/sh", "-c", args.shell] if args.shell else berthd_process.BUSYBOX_CMD
    data = berthd_process.busybox_docker_archive(cmd)
    with open(args.out, "wb") as f:
        f.write(data)
    print("%s: docker-archive of busybox, %d bytes, Cmd %s" % (args.out, len(data), cmd))


def _poll(get, done, what, timeout, since):
    start = since if since else time.time()
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        state = get()
        if state != last:
            last = state
            if os.environ.get("E2E_VERBOSE"):
                print("  %.2f s: %s" % (time.time() - start, state), file=sys.stderr)
        if done(state):
            print("%.3f" % (time.time() - start))
            return 0
        if state and state[0] == "ERROR":
            break
        time.sleep(0.1)
    print("%s: %s after %.1f s" % (what, last, time.time() - start), file=sys.stderr)
    return 1


def wait_server(args):
    s = session()

    def get():
        r = s.get("/servers/" + args.id, endpoint_filter={"service_type": "compute"},
                  raise_exc=False)
        if r.status_code == 404:
            return ("GONE", None)
        srv = r.json()["server"]
        return (srv["status"], srv.get("OS-EXT-STS:task_state"))

    if args.status == "GONE":
        return _poll(get, lambda st: st[0] == "GONE", "server " + args.id, args.timeout,
                     args.since)
    return _poll(get, lambda st: st == (args.status, None), "server " + args.id,
                 args.timeout, args.since)


def wait_image(args):
    s = session()

    def get():
        r = s.get("/v2/images/" + args.id, endpoint_filter={"service_type": "image"},
                  raise_exc=False)
        if r.status_code == 404:
            return ("GONE",)
        return (r.json()["status"],)

    return _poll(get, lambda st: st[0] == args.status, "image " + args.id, args.timeout,
                 args.since)


def boot_timed(args):
    """create -> ACTIVE and delete -> gone through the compute API itself (no CLI start-up
    in the figure), polling every 50 ms; one line per round."""
    s = session()
    compute = {"service_type": "compute"}
    # 2.37: "networks": "none"; 2.74: "host" (admin) to pick the compute service.
    hdr = {"X-OpenStack-Nova-API-Version": "2.74" if args.host else "2.37"}
    flavors = s.get("/flavors", endpoint_filter=compute).json()["flavors"]
    flavor = [f["id"] for f in flavors if f["name"] == args.flavor][0]

    def wait(uuid, done, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = s.get("/servers/" + uuid, endpoint_filter=compute, headers=hdr,
                      raise_exc=False)
            if done(r):
                return True
            if r.status_code == 200 and r.json()["server"]["status"] == "ERROR":
                return False
            time.sleep(0.05)
        return False

    failed = 0
    actives = []
    for i in range(args.rounds):
        t0 = time.monotonic()
        body = {"name": "%s-%d" % (args.name, i), "imageRef": args.image,
                "flavorRef": flavor,
                "networks": [{"uuid": args.network}] if args.network else "none"}
        if args.host:
            body["host"] = args.host
        r = s.post("/servers", endpoint_filter=compute, headers=hdr, json={"server": body})
        uuid = r.json()["server"]["id"]
        accepted = time.monotonic() - t0
        ok = wait(uuid, lambda r: r.status_code == 200 and
                  r.json()["server"]["status"] == "ACTIVE" and
                  r.json()["server"].get("OS-EXT-STS:task_state") is None)
        active = time.monotonic() - t0
        t1 = time.monotonic()
        s.delete("/servers/" + uuid, endpoint_filter=compute, headers=hdr)
        gone = wait(uuid, lambda r: r.status_code == 404)
        deleted = time.monotonic() - t1
        print("%s round %d: POST answered %.3f s, ACTIVE %.3f s%s, delete -> gone %.3f s%s"
              % (args.label, i + 1, accepted, active, "" if ok else " (FAILED)", deleted,
                 "" if gone else " (FAILED)"))
        failed += (not ok) + (not gone)
        actives.append(active)
    actives.sort()
    print("%s: create -> ACTIVE median %.3f s, min %.3f s over %d rounds"
          % (args.label, actives[len(actives) // 2], actives[0], len(actives)))
    return 1 if failed else 0


def server_ports(args):
    """One line per port of the server: port-id mac ipv4 status."""
    s = session()
    ports = s.get("/v2.0/ports?device_id=" + args.id,
                  endpoint_filter={"service_type": "network"}).json()["ports"]
    for p in ports:
        ipv4 = [f["ip_address"] for f in p["fixed_ips"] if ":" not in f["ip_address"]]
        print(p["id"], p["mac_address"], ipv4[0] if ipv4 else "-", p["status"])
    return 0


def server_port(args):
    """One line: port-id mac ipv4 status vif_type host network-id network-mtu (the
    server's only port; exit 1 unless it has exactly one)."""
    s = session()
    net = {"service_type": "network"}
    ports = s.get("/v2.0/ports?device_id=" + args.id, endpoint_filter=net).json()["ports"]
    if len(ports) != 1:
        print("server %s has %d ports" % (args.id, len(ports)), file=sys.stderr)
        return 1
    p = ports[0]
    ipv4 = [f["ip_address"] for f in p["fixed_ips"] if ":" not in f["ip_address"]]
    network = s.get("/v2.0/networks/" + p["network_id"], endpoint_filter=net).json()["network"]
    print(p["id"], p["mac_address"], ipv4[0] if ipv4 else "-", p["status"],
          p.get("binding:vif_type") or "-", p.get("binding:host_id") or "-",
          p["network_id"], network.get("mtu") or 0)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keystone-setup")
    k.add_argument("--password", required=True)
    k.add_argument("--region", default="RegionOne")
    k.set_defaults(fn=keystone_setup)
    b = sub.add_parser("busybox-archive")
    b.add_argument("out")
    b.add_argument("--shell", help="the image's command, a /bin/sh -c script (default: "
                   "berthd_process.BUSYBOX_CMD)")
    b.set_defaults(fn=busybox_archive)
    for name, fn in (("wait-server", wait_server), ("wait-image", wait_image)):
        w = sub.add_parser(name)
        w.add_argument("id")
        w.add_argument("status")
        w.add_argument("--timeout", type=float, default=300)
        w.add_argument("--since", type=float, default=0)
        w.set_defaults(fn=fn)
    t = sub.add_parser("boot-timed")
    t.add_argument("--image", required=True)
    t.add_argument("--flavor", required=True)
    t.add_argument("--name", default="berth-e2e-api")
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--host", help="the compute service's host (admin; microversion 2.74)")
    t.add_argument("--label", default="api")
    t.add_argument("--network", help="a network id (default: no network)")
    t.set_defaults(fn=boot_timed)
    sp = sub.add_parser("server-port")
    sp.add_argument("id")
    sp.set_defaults(fn=server_port)
    sps = sub.add_parser("server-ports")
    sps.add_argument("id")
    sps.set_defaults(fn=server_ports)
    args = p.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
