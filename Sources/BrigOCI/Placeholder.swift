// BrigOCI
