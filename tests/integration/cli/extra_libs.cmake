# The tests run the real binaries: build them with the test (ctest itself builds nothing).
add_dependencies(${target} berth-runtime berth-monitor)
