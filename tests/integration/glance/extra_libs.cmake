# The glance tests talk HTTP to tests/support/fake_openstack.py and, for the berthd cases,
# to a real berthd started with the server tests' fixture.
find_package(CURL REQUIRED)
target_sources(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration/server/daemon_fixture.cc)
target_link_libraries(${target} PRIVATE CURL::libcurl berth_server)
add_dependencies(${target} berthd berth-monitor)
