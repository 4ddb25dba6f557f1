# Sourced by openstack_e2e.sh: the Debian packages of the single-machine OpenStack and the
# debconf answers that keep every package from configuring a database, RabbitMQ or Keystone
# endpoints by itself (the script does all of that).
# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the sourcing script
E2E_PACKAGES=(
  mariadb-server rabbitmq-server memcached python3-pymysql python3-memcache
  keystone uwsgi-core uwsgi-plugin-python3
  glance-api placement-api
  nova-api nova-conductor nova-scheduler nova-compute nova-compute-ironic
  neutron-server
  heat-api heat-engine
  python3-openstackclient python3-heatclient python3-keystoneclient python3-novaclient
  python3-glanceclient
  busybox-static curl
  tempest
)

# BERTH_E2E_NEUTRON=1 (the default): the Linux bridge agent (it brings ebtables, ipset,
# iptables and bridge-utils along) and the tools the script checks the provider network with.
E2E_NEUTRON_PACKAGES=(neutron-linuxbridge-agent ebtables iproute2 python3-os-vif sudo)

E2E_DEBCONF="
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
glance-common glance/configure_db boolean false
glance-common glance/configure_rabbit boolean false
glance-common glance/configure_ksat boolean false
glance-api glance/configure_api-endpoint boolean false
placement-common placement/configure_db boolean false
placement-common placement/configure_ksat boolean false
placement-api placement/configure_api-endpoint boolean false
nova-common nova/configure_db boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/configure_ksat boolean false
nova-common nova/configure_neutron boolean false
nova-common nova/configure_placement boolean false
nova-api novaapi/configure_db boolean false
nova-api nova/configure_api-endpoint boolean false
neutron-common neutron/configure_db boolean false
neutron-common neutron/configure_rabbit boolean false
neutron-common neutron/configure_ksat boolean false
neutron-common neutron/configure_nova boolean false
heat-common heat/configure_with_debconf boolean false
heat-common heat/configure_db boolean false
heat-common heat/configure_rabbit boolean false
heat-common heat/configure_ksat boolean false
heat-api heat/configure_api-endpoint boolean false
"
