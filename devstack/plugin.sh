# shellcheck shell=bash
# Berth's devstack plugin: Nova's instances as Berth containers.
#   local.conf:  enable_plugin berth <this repository's URL or path> [branch]
# devstack sources this file as `plugin.sh stack|unstack|clean [phase]`; the functions are in
# devstack/lib/berth, the settings (BERTH_*) in devstack/settings.

# shellcheck source=devstack/lib/berth
source "$BERTH_DIR/devstack/lib/berth"

if is_service_enabled berthd; then
    if [[ "$1" == "stack" && "$2" == "pre-install" ]]; then
        echo_summary "Installing Berth's build dependencies"
        install_berth_deps

    elif [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Building and installing Berth"
        build_berth

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        # Before devstack starts nova-compute, which asks berthd for the host's resources.
        echo_summary "Configuring and starting berthd; pointing Nova at it"
        configure_berth
        BERTH_TOKEN=$(berth_admin_token)
        install_berth_nova_driver
        if is_service_enabled n-cpu; then
            configure_nova_for_berth "$BERTH_TOKEN"
        fi
        if is_service_enabled g-api glance; then
            configure_glance_for_berth
        fi
        start_berthd

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        if [[ "$BERTH_UPLOAD_HEAT_IMAGES" == "True" ]] && is_service_enabled g-api glance; then
            echo_summary "Building the Heat templates' images and uploading them to Glance"
            upload_berth_heat_images
        fi
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_berthd
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_berth
    fi
fi
