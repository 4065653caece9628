import Store

/// What nginx's index of public files holds and under which names, derived
/// from the route table so `PublicIndex` (which writes it) and `NginxPlan`
/// (which reads it) can't disagree.
///
/// Per tree there are three maps keyed by id: the link's type key (its
/// name's extension, which a `types` file turns into the Content-Type as
/// nginx does for any static file), the Content-Disposition parameters
/// (`; filename=…`), and a code with one character per slot, a slot being
/// one ``PublicFile`` route on one origin: `i` (answered inline), `a` (as an
/// attachment) or `-` (left to the worker).
/// The codes map's file name carries a signature of the slots, so a config
/// and an index from different route tables never pair up: nginx then finds
/// no codes and every request goes to a worker.
public struct PublicIndexLayout: Sendable {
    public struct Slot: Sendable {
        public let route: Route
        public let contentOrigin: Bool
        public var origin: String { contentOrigin ? "content" : "app" }
    }

    public struct Tree: Sendable {
        public let kind: PublicTree.Kind
        public let slots: [Slot]
        /// Changes whenever the slots do.
        public let signature: String

        public var keysFile: String { "\(kind.rawValue).keys.map" }
        public var typesFile: String { "\(kind.rawValue).types" }
        public var parametersFile: String { "\(kind.rawValue).params.map" }
        public var codesFile: String { "\(kind.rawValue).codes-\(signature).map" }
        public var keyVariable: String { "minihost_public_\(kind.rawValue)_key" }
        public var parametersVariable: String { "minihost_public_\(kind.rawValue)_params" }
        public var codesVariable: String { "minihost_public_\(kind.rawValue)_codes" }
        /// `inline`, `attachment`, or empty (worker) for slot `index`.
        public func dispositionVariable(_ index: Int) -> String { "minihost_public_\(kind.rawValue)_\(index)" }

        public func slotIndex(of route: Route, contentOrigin: Bool) -> Int? {
            slots.firstIndex { $0.route.name == route.name && $0.contentOrigin == contentOrigin }
        }
    }

    public let trees: [Tree]

    public init(table: RouteTable) {
        trees = PublicTree.Kind.allCases.compactMap { kind in
            let routes = table.routes.filter { $0.publicFile?.tree == kind }
            guard !routes.isEmpty else { return nil }
            let slots = routes.flatMap { route in
                [Slot(route: route, contentOrigin: false)] + (route.onContentOrigin ? [Slot(route: route, contentOrigin: true)] : [])
            }
            let description = slots.map { "\($0.route.name)@\($0.origin)|\($0.route.publicFile!.cacheControl)" }
                .joined(separator: "\n")
            return Tree(kind: kind, slots: slots, signature: StableHash.hex(description))
        }
    }

    /// Identifies the layout as a whole (part of the index's stamp).
    public var signature: String { trees.map(\.signature).joined(separator: ",") }
}
