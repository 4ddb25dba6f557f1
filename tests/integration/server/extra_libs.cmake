# The API tests talk HTTP to a real berthd.
find_package(CURL REQUIRED)
target_link_libraries(${target} PRIVATE CURL::libcurl)
add_dependencies(${target} berthd berth-monitor)
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration/network/net_fixture.cc)
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration/network/ovs_fixture.cc)
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/integration/network/libvirt_fixture.cc)
# The escape suite copies this static probe into an instance's image.
add_dependencies(${target} berth_escape_probe)
