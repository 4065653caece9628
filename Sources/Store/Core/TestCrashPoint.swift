import Glibc

#if DEBUG
/// Crashes the process at a named point, for tests of what a crash there
/// leaves behind. `MINIHOST_TEST_CRASH_POINT=NAME@FILE` crashes at point
/// NAME once: when FILE could be removed (so a restarted worker runs on).
/// Debug builds only.
enum TestCrashPoint {
    static func reached(_ name: String) {
        guard let setting = getenv("MINIHOST_TEST_CRASH_POINT").map({ String(cString: $0) }),
              setting.hasPrefix(name + "@"), unlink(String(setting.dropFirst(name.count + 1))) == 0 else { return }
        fatalError("test crash at \(name)")
    }
}
#endif
