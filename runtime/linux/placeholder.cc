// placeholder: replaced as the subsystem lands
