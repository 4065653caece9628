#if DEBUG
import Glibc
import HTTPCore

/// Debug builds only, and only with `MINIHOST_TEST_CRASH_ROUTE=1`:
/// `POST /api/_test/crash` kills the worker process the way a trap would,
/// so tests can prove a crash costs only the requests in flight.
struct TestCrashRoutes {
    static var enabled: Bool { getenv("MINIHOST_TEST_CRASH_ROUTE").map { String(cString: $0) } == "1" }

    func register(in builder: inout RouterBuilder) {
        guard Self.enabled else { return }
        builder.add("POST", "/api/_test/crash") { _, _ in
            fatalError("test crash requested through /api/_test/crash")
        }
    }
}
#endif
