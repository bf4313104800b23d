// BrigLinux
