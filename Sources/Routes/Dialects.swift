import Store

/// A dialect's routes: one folder under `Routes/`, registered below.
protocol DialectRoutes {
    /// The API's name in metrics and logs (`minihost`, `plain`, …).
    static var api: String { get }
    /// Declares the dialect's routes in groups (see ``RouteTable/group(_:prefix:auth:limit:_:)``).
    static func register(in table: inout RouteTable, configuration: ServerConfiguration)
}

/// Route handlers that answer from the server's shared state.
protocol ContextRoutes {
    var context: ServerContext { get }
}

extension ContextRoutes {
    var store: MinihostStore { context.store }
}

extension RouteTable {
    /// Every dialect's routes, validated. Adding a dialect is a folder under
    /// `Routes/` and one line here (see docs/ARCHITECTURE.md).
    public static func standard(_ configuration: ServerConfiguration) throws -> RouteTable {
        var table = RouteTable()
        table.register(HealthRoutes.self, configuration)
        table.register(MinihostRoutes.self, configuration)
        table.register(PlainRoutes.self, configuration)
        table.register(UploaderRoutes.self, configuration)
        table.register(SkysendRoutes.self, configuration)
        table.register(TusRoutes.self, configuration)
        table.register(S4Routes.self, configuration)
        table.register(MetricsRoutes.self, configuration)
        #if DEBUG
        table.register(TestCrashRoutes.self, configuration)
        #endif
        return try table.validated()
    }
}

extension RouteTable {
    /// Declares `api`'s routes, each stamped with its name.
    mutating func register(_ api: any DialectRoutes.Type, _ configuration: ServerConfiguration) {
        registering = api.api
        api.register(in: &self, configuration: configuration)
        registering = ""
    }
}
