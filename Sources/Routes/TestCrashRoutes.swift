#if DEBUG
import Glibc
import HTTPCore

/// Debug builds only, and only with `MINIHOST_TEST_CRASH_ROUTE=1`:
/// `POST /api/_test/crash` kills the worker process the way a trap would,
/// so tests can prove a crash costs only the requests in flight.
struct TestCrashRoutes: DialectRoutes {
    static var enabled: Bool { getenv("MINIHOST_TEST_CRASH_ROUTE").map { String(cString: $0) } == "1" }

    static let api = "test"

    static func register(in table: inout RouteTable, configuration: ServerConfiguration) {
        guard enabled else { return }
        table.group(.json) { group in
            group.add("POST", "/api/_test/crash") { _ in
                fatalError("test crash requested through /api/_test/crash")
            }
        }
    }
}
#endif
