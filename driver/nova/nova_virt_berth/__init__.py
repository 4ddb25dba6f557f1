"""nova.virt.berth: the name under which Nova 26 loads Berth's driver.

Nova only imports compute drivers from its own nova.virt namespace
(nova.virt.driver.load_compute_driver), so this package is linked into it as
nova/virt/berth by driver/nova/install.sh. It only re-exports nova_berth, which holds
the code, so `compute_driver = berth.BerthDriver` and
`compute_driver = berth.driver.BerthDriver` both work.
"""

from nova_berth.driver import BerthDriver  # noqa: F401
