// SPDX-License-Identifier: Apache-2.0

/// Squall's version, defined here once (semantic versioning; CHANGELOG.md says what each
/// brought): `squall --version`, the `Server` header, the first log line, `/healthz` and
/// `/readyz` all read it. Embedders read it as `Squall.version`.
public let version = "0.9.0"
