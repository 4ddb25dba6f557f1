target_link_libraries(${target} PRIVATE berth_monitor_client berth_monitor_mini)
