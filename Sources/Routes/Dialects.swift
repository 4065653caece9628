/// A dialect's routes: one folder under `Routes/`, registered below.
protocol DialectRoutes {
    /// Declares the dialect's routes in groups (see ``RouteTable/group(_:prefix:auth:limit:_:)``).
    static func register(in table: inout RouteTable, configuration: ServerConfiguration)
}

extension RouteTable {
    /// Every dialect's routes, validated. Adding a dialect is a folder under
    /// `Routes/` and one line here (see docs/ARCHITECTURE.md).
    public static func standard(_ configuration: ServerConfiguration) throws -> RouteTable {
        var table = RouteTable()
        HealthRoutes.register(in: &table, configuration: configuration)
        MinihostRoutes.register(in: &table, configuration: configuration)
        PlainRoutes.register(in: &table, configuration: configuration)
        #if DEBUG
        TestCrashRoutes.register(in: &table, configuration: configuration)
        #endif
        return try table.validated()
    }
}
