// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization
import Testing

/// What the server API asks of the hub: the channels in use, forgetting a channel's history, and
/// commands that reach every node.
@Suite("Hub administration")
struct HubAdministrationTests {
    @Test("channels lists the channels with subscribers here, by name, with their counts, filtered")
    func channels() async throws {
        let hub = Hub()
        let (a, b, c) = (try ChannelName("chat:a"), try ChannelName("chat:b"), try ChannelName("news"))
        let subscribers = (0..<4).map { _ in Recorder() }
        try await hub.subscribe(subscribers[0], to: b, member: member())
        try await hub.subscribe(subscribers[1], to: a, member: member())
        try await hub.subscribe(subscribers[2], to: a, member: member())
        try await hub.subscribe(subscribers[3], to: c, member: member())
        try await hub.publish(.text("no subscriber"), to: try ChannelName("quiet"))
        #expect(hub.channels().map(\.channel) == [a, b, c])
        #expect(hub.channels { $0.rawValue.hasPrefix("chat:") }.map { "\($0.channel)=\($0.subscribers)" } == ["chat:a=2", "chat:b=1"])
        hub.unsubscribe(subscribers[0], from: b)
        #expect(hub.channels().map(\.channel) == [a, c])
    }

    @Test("removing history keeps the position: the next message continues it, and resuming from before it is lost")
    func removeHistory() async throws {
        let hub = Hub()
        let room = try ChannelName("room")
        for n in 1...3 { try await hub.publish(.text("m\(n)"), to: room) }
        let before = try await hub.history(room).position
        let kept = try await hub.removeHistory(room)
        #expect(kept == before)
        #expect(try await hub.history(room).messages.isEmpty)
        let resumed = try await hub.history(room, since: StreamPosition(epoch: kept.epoch, offset: 1))
        #expect(resumed.recovered == false, "messages after offset 1 are gone")
        #expect(try await hub.history(room, since: kept).recovered, "a client at the last position lost nothing")
        #expect(try await hub.publish(.text("m4"), to: room).offset == 4)
        #expect(try await hub.history(room).messages.map(\.offset) == [4])
    }

    @Test("a shared store's history removal empties every node's copy")
    func removeHistoryOnEveryNode() async throws {
        let cluster = InProcessCluster()
        let (a, b) = (Hub(storage: .shared(cluster.node())), Hub(storage: .shared(cluster.node())))
        let room = try ChannelName("room")
        for n in 1...3 { try await a.publish(.text("m\(n)"), to: room) }
        #expect(try await b.history(room).messages.count == 3, "b holds its own copy")
        let kept = try await a.removeHistory(room)
        #expect(kept.offset == 3)
        #expect(try await a.history(room).messages.isEmpty)
        #expect(try await b.history(room).messages.isEmpty)
        #expect(try await b.publish(.text("m4"), to: room).offset == 4)
    }

    @Test("a command sent through a shared store reaches the other nodes' followers, not the sender's")
    func commands() async throws {
        let cluster = InProcessCluster()
        let (sender, receiver) = (cluster.node(), cluster.node())
        let onSender = CommandRecorder()
        let onReceiver = CommandRecorder()
        sender.follow(onSender)
        receiver.follow(onReceiver)
        let command = NodeCommand.disconnect(user: "alice", Disconnect(code: 4600, reason: "bye"))
        try await sender.send(command)
        #expect(onReceiver.commands.withLock { $0 } == [command])
        #expect(onSender.commands.withLock { $0 }.isEmpty)
    }
}

final class CommandRecorder: NodeCommandFollower {
    let commands = Mutex<[NodeCommand]>([])

    func received(_ command: NodeCommand) {
        commands.withLock { $0.append(command) }
    }
}
