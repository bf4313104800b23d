// BrigNamespaces
