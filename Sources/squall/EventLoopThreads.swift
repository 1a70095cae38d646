/// How many event-loop threads this process runs: `--threads N`, else `SQUALL_THREADS`, else
/// the CPUs it may run on (``ProcessorAffinity``). A value that does not parse or is out of
/// range falls back to the CPU count here; `squall serve` rejects it with a usage error.
enum EventLoopThreads {
    static let range = 1...1024

    static func count(arguments: [String], environment: [String: String]) -> Int {
        let fromArguments =
            zip(arguments, arguments.dropFirst()).first { $0.0 == "--threads" }.map(\.1)
            ?? arguments.first { $0.hasPrefix("--threads=") }.map { String($0.dropFirst("--threads=".count)) }
        if let value = (fromArguments ?? environment["SQUALL_THREADS"]).flatMap({ Int($0) }), range.contains(value) {
            return value
        }
        return ProcessorAffinity.cpuCount
    }
}
