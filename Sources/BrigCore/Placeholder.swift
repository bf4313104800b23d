// BrigCore
