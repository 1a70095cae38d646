// SPDX-License-Identifier: Apache-2.0

@_spi(Fuzzing) import Squall

#if canImport(Glibc)
    import Glibc
#endif

// libFuzzer's driver, started from this program's own main: SwiftPM links an executable's main
// under a name of its own, so libFuzzer's main would never run.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target `SQUALL_FUZZ_TARGET` names (see `FuzzTargets.all`), chosen once.
let name = getenv("SQUALL_FUZZ_TARGET").map { String(cString: $0) } ?? ""
guard let target = FuzzTargets.all[name] else {
    print("set SQUALL_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
    exit(2)
}
nonisolated(unsafe) let chosen = target

/// One input: libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    chosen(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv, fuzzOne))
