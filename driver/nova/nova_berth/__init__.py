"""Berth's compute driver for OpenStack Nova (Zed / Nova 26).

nova_berth.driver.BerthDriver is the driver; nova_berth.client the berthd REST client;
nova_berth.flavor the flavor translation; nova_berth.conf the [berth] options.
Nova loads it through the nova/virt/berth shim (driver/nova/nova_virt_berth, linked by
driver/nova/install.sh): compute_driver = berth.BerthDriver
"""
