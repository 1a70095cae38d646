// SPDX-License-Identifier: Apache-2.0

// The server API's types (`Components.Schemas`, `Operations`) and routes (`APIProtocol`,
// `registerHandlers(on:)`), which swift-openapi-generator writes from openapi.yaml — a link to
// docs/openapi.yaml, the API's one source — at every build, with `package` access: Squall's
// ServerAPI layer implements them, and nothing outside this package sees them.
