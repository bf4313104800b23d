// BrigCgroups
