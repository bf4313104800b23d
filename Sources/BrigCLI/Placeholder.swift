// BrigCLI
