"""The [berth] section of nova.conf."""

from oslo_config import cfg

berth_group = cfg.OptGroup(
    "berth",
    title="Berth container driver",
    help="How nova-compute reaches berthd, the Berth REST daemon on this host.")

berth_opts = [
    cfg.StrOpt("api_url", default="http://127.0.0.1:8780",
               help="Base URL of berthd (scheme, host, port; no /v1)."),
    cfg.StrOpt("token", secret=True, default=None,
               help="berthd's admin token. When unset it is read from token_file."),
    cfg.StrOpt("token_file", default="/etc/berth/admin-token",
               help="File holding berthd's admin token (berthd creates it, mode 0600; "
                    "nova-compute must be able to read it). Re-read when berthd "
                    "answers 401, so a rotated token is picked up."),
    cfg.FloatOpt("connect_timeout", default=5.0, min=0.1,
                 help="Seconds to wait for a TCP connection to berthd."),
    cfg.FloatOpt("api_timeout", default=60.0, min=1.0,
                 help="Seconds to wait for an answer to an ordinary call."),
    cfg.FloatOpt("spawn_timeout", default=900.0, min=1.0,
                 help="Seconds to wait for POST /v1/instances; includes the image "
                      "download from Glance when the image is not cached yet."),
    cfg.FloatOpt("snapshot_timeout", default=1800.0, min=1.0,
                 help="Seconds to wait for a snapshot, including its upload to Glance."),
    cfg.IntOpt("soft_reboot_timeout", default=60, min=0, max=3600,
               help="Seconds a soft reboot gives the instance's init to stop before it "
                    "is killed."),
    cfg.IntOpt("console_lines", default=1000, min=1, max=100000,
               help="Lines of console log fetched for get_console_output."),
    cfg.BoolOpt("pass_user_token", default=True,
                help="Send the request's Keystone token with spawn and snapshot so "
                     "berthd reads and writes Glance as the user; otherwise berthd uses "
                     "its own service credentials."),
]


def register_opts(conf):
    conf.register_group(berth_group)
    conf.register_opts(berth_opts, group=berth_group)


def list_opts():
    return {berth_group: berth_opts}
