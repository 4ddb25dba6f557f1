"""nova.virt.berth.driver: re-exports nova_berth.driver (see __init__)."""

from nova_berth.driver import *  # noqa: F401,F403
from nova_berth.driver import BerthDriver  # noqa: F401
