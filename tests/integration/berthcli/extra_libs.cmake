# The CLI tests run the berth binary against a real berthd started by the server tests'
# fixture.
find_package(CURL REQUIRED)
target_sources(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration/server/daemon_fixture.cc)
target_link_libraries(${target} PRIVATE CURL::libcurl berth_common berth_store)
add_dependencies(${target} berthd berth berth-monitor)
