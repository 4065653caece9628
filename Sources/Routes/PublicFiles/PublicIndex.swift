import Foundation
import HTTPCore
import Logging
import Store

/// Writes nginx's index of the public tree: for every linked id, the headers
/// each ``PublicFile`` route answers with, in the maps ``PublicIndexLayout``
/// names. The headers are the worker's own answers (each route asked once
/// per id and origin, the way a client would), so a file nginx serves from
/// the tree carries the same Content-Type, Content-Disposition and
/// Cache-Control as one a worker sends; any answer the maps can't reproduce
/// (another status or header, a value nginx would read as a variable) is
/// left to the worker.
///
/// The index only adds speed: a link is the permission, and nginx serves
/// from the tree only ids that have both a link and an entry. So a stale
/// index is safe, and ``refresh()`` runs at most every few seconds
/// (`MINIHOST_PUBLIC_INDEX_SECONDS`); each new index costs an nginx reload.
///
/// Not thread-safe: one background thread per process owns it. Processes
/// share the work through a lock and the index's stamp.
public final class PublicIndex {
    /// What one id contributes to its tree's maps.
    struct Entry: Equatable {
        var link: PublicTree.Link
        var contentType: String
        /// Content-Disposition after its type: `; filename="…"…`, or empty.
        var parameters: String
        /// One character per slot (see ``PublicIndexLayout``).
        var codes: String
    }

    private let context: ServerContext
    private let router: Router
    public let layout: PublicIndexLayout
    private var tree: PublicTree { context.store.publicTree }
    /// Entries by tree and link, with the inode they were computed for: an
    /// id's answer only changes with a new link.
    private var known: [PublicTree.Kind: [PublicTree.Link: (stamp: PublicTree.LinkStamp, entry: Entry?)]] = [:]

    public init(context: ServerContext) throws {
        self.context = context
        router = try context.makeRouter()
        layout = PublicIndexLayout(table: try RouteTable.standard(context.configuration))
    }

    /// Rebuilds the index if what is public changed since it was written (or
    /// the route table did). Returns whether it wrote a new one.
    @discardableResult
    public func refresh() throws -> Bool {
        try tree.withIndexLock {
            let stamp = "\(try context.store.publicGeneration()) \(layout.signature)"
            guard tree.installedIndexStamp() != stamp else { return false }
            let started = Date()
            var files: [String: String] = [:]
            var entries = 0
            for layoutTree in layout.trees {
                let current = Self.consistent(entriesForTree(layoutTree))
                entries += current.count
                files.merge(Self.render(current, layoutTree)) { a, _ in a }
            }
            try tree.installIndex(files, stamp: stamp)
            context.logger.info("public index written", metadata: [
                "entries": "\(entries)", "stamp": "\(stamp)",
                "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
            ])
            return true
        }
    }

    /// The entries for every link in `layoutTree`'s folder now.
    private func entriesForTree(_ layoutTree: PublicIndexLayout.Tree) -> [Entry] {
        let kind = layoutTree.kind
        var previous = known[kind] ?? [:]
        var next: [PublicTree.Link: (stamp: PublicTree.LinkStamp, entry: Entry?)] = [:]
        var result: [Entry] = []
        for link in tree.links(kind).sorted(by: { $0.name < $1.name }) {
            guard let stamp = tree.linkStamp(kind, link) else { continue }
            let entry: Entry?
            if let cached = previous.removeValue(forKey: link), cached.stamp == stamp {
                entry = cached.entry
            } else {
                entry = computeEntry(link, layoutTree)
            }
            next[link] = (stamp, entry)
            if let entry { result.append(entry) }
        }
        known[kind] = next
        return result
    }

    /// One entry per id, and one Content-Type per type key: anything else
    /// (two links for one id, two types under one key) is left to the worker.
    static func consistent(_ entries: [Entry]) -> [Entry] {
        var types: [String: Set<String>] = [:], links: [String: Int] = [:]
        for entry in entries {
            types[entry.link.typeKey, default: []].insert(entry.contentType)
            links[entry.link.id, default: 0] += 1
        }
        return entries.filter { types[$0.link.typeKey]?.count == 1 && links[$0.link.id] == 1 }
    }

    /// Asks every slot's route for the link's id as a client would, and keeps
    /// what nginx can answer the same way.
    func computeEntry(_ link: PublicTree.Link, _ layoutTree: PublicIndexLayout.Tree) -> Entry? {
        var contentType: String?
        var parameters: String?
        var codes = ""
        for slot in layoutTree.slots {
            guard let (parameter, _) = slot.route.publicIdParameter,
                  let answer = staticAnswer(slot, path: slot.route.path.path(with: [parameter: link.id]), link: link,
                                            kind: layoutTree.kind),
                  contentType == nil || (answer.contentType == contentType && answer.parameters == parameters) else {
                codes.append("-")
                continue
            }
            contentType = answer.contentType
            parameters = answer.parameters
            codes.append(answer.inline ? "i" : "a")
        }
        guard let contentType, let parameters else { return nil }
        return Entry(link: link, contentType: contentType, parameters: parameters, codes: codes)
    }

    private struct StaticAnswer {
        var contentType: String
        var parameters: String
        var inline: Bool
    }

    /// The slot's answer for `path`, if nginx can give the same one from the tree.
    private func staticAnswer(_ slot: PublicIndexLayout.Slot, path: String, link: PublicTree.Link,
                              kind: PublicTree.Kind) -> StaticAnswer? {
        let response = router.respond(to: Request(method: "GET", path: path, isContentOrigin: slot.contentOrigin))
        guard response.status.code == 200, case .file(let file) = response.body,
              tree.isLinked(kind, link, to: file.absolutePath) else { return nil }
        // Every header the static location can't add itself must be one the maps give.
        var contentType: String?
        var disposition: String?
        for (name, value) in response.headers.fields {
            switch name.lowercased() {
            case "content-type": contentType = value
            case "content-disposition": disposition = value
            case "cache-control": guard value == slot.route.publicFile?.cacheControl else { return nil }
            default:
                guard StoredContent.hardeningHeaders.contains(where: { $0.0.lowercased() == name.lowercased() && $0.1 == value })
                else { return nil }
            }
        }
        guard let contentType, let disposition, Self.isMapValue(contentType), Self.isMapValue(disposition) else { return nil }
        let semicolon = disposition.firstIndex(of: ";") ?? disposition.endIndex
        let type = disposition[..<semicolon].trimmingCharacters(in: .whitespaces)
        guard type == "inline" || type == "attachment" else { return nil }
        return StaticAnswer(contentType: contentType, parameters: String(disposition[semicolon...]), inline: type == "inline")
    }

    /// Printable ASCII without `$` (nginx reads a map value's `$` as a variable).
    static func isMapValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "$") }
    }

    /// The files of one tree: `"key" "value";` map lines, and the `types`
    /// lines (`"content/type" key;`).
    static func render(_ entries: [Entry], _ layoutTree: PublicIndexLayout.Tree) -> [String: String] {
        var keys = "", parameters = "", codes = ""
        var types: [String: String] = [:]
        for entry in entries {
            keys += "\(quoted(entry.link.id)) \(quoted(entry.link.typeKey));\n"
            parameters += "\(quoted(entry.link.id)) \(quoted(entry.parameters));\n"
            codes += "\(quoted(entry.link.id)) \(quoted(entry.codes));\n"
            types[entry.link.typeKey] = entry.contentType
        }
        let typeLines = types.sorted { $0.key < $1.key }.map { "\(quoted($0.value)) \($0.key);\n" }.joined()
        return [layoutTree.keysFile: keys, layoutTree.parametersFile: parameters, layoutTree.codesFile: codes,
                layoutTree.typesFile: typeLines]
    }

    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
