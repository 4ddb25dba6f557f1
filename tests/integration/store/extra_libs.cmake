# The CLI test runs the berth-image binary.
add_dependencies(${target} berth-image)
