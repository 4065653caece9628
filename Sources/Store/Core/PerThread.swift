import Glibc

/// One object per thread, made on the thread's first use and released when
/// the thread ends.
///
/// For state that every worker thread touches on every request: owned by its
/// thread, it needs no lock, and 128 threads never queue on one.
final class PerThread<Value: AnyObject>: @unchecked Sendable {
    private var key = pthread_key_t()
    private let make: @Sendable () throws -> Value

    init(_ make: @escaping @Sendable () throws -> Value) {
        self.make = make
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
    }

    // A process has about a thousand keys: each store (tests make hundreds)
    // gives its keys back. Objects other threads still hold are leaked,
    // which only happens when a store goes away before its threads do.
    deinit {
        if let own = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(own).release() }
        pthread_key_delete(key)
    }

    /// The calling thread's object.
    func get() throws -> Value {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(existing).takeUnretainedValue()
        }
        let value = try make()
        pthread_setspecific(key, Unmanaged.passRetained(value).toOpaque())
        return value
    }
}
