// SPDX-License-Identifier: Apache-2.0

/**
 * squall.js — the Squall browser client: one connection that feels like the browser's
 * WebSocket, with channels, presence and history over WebSocket, Server-Sent Events, long
 * polling and short polling, falling back when one is blocked and resuming without loss.
 *
 * As a module:      import Squall, { Client } from "squall";
 * As a script tag:  <script src="/squall.js"></script>  →  Squall.Client
 */

/** The transports, in the order they are tried by default. */
export type Transport = "websocket" | "sse" | "longpoll" | "shortpoll";

/** What to do after a close with this code: by range, not by a list of codes. */
export type CloseAdvice = "refresh" | "giveup" | "reconnect";

/** A token, or a promise of one. */
export type TokenSource = string | PromiseLike<string>;

/** Message data: text, or binary as an ArrayBuffer (sent: an ArrayBuffer or a typed array). */
export type Data = string | ArrayBuffer | ArrayBufferView;

/** Where a message sits in its channel's log. */
export interface Position {
    epoch: string;
    offset: number;
}

/** A publish acknowledged by the server. */
export interface Acknowledgement extends Position {
    id: string;
    time: string;
}

export interface ClientOptions {
    /** Tried in this order. Default: all four. */
    transports?: Transport[];
    /** Subscribed at once; where `send` publishes. Default `"msg"`. */
    channel?: string;
    /** Shown to others in presence as `{name}`. */
    name?: string | null;
    /** Ask for join and leave events. Default true. */
    presence?: boolean;
    /** Exponential backoff bounds, in milliseconds. Defaults 500 and 10000. */
    minReconnectDelay?: number;
    maxReconnectDelay?: number;
    /** A transport that takes longer to open counts as failed (ms). Default 5000. */
    openTimeout?: number;
    /** A transport that dies sooner after opening counts as failed (ms). Default 3000. */
    stableAfter?: number;
    /** Between short polls (ms). Default 1000. */
    shortPollInterval?: number;
    /** Asked of each long poll (s). Default 25. */
    longPollWait?: number;
    /** Times a publish whose answer was lost is sent again. Default 5. */
    publishRetries?: number;
    /** The application's connection token. */
    getToken?: (() => TokenSource) | null;
    /** A subscription token for a channel of a private namespace, asked at every subscribe. */
    getSubscriptionToken?: ((channel: string) => TokenSource) | null;
    /** How long before a token's `exp` a fresh one is asked for (ms). Default 10000. */
    tokenRefreshMargin?: number;
}

export interface SubscribeOptions {
    /** Ask for join and leave events on this channel. Default true. */
    presence?: boolean;
}

export interface PublishOptions {
    /** 1–255 visible ASCII characters; one is made up when not given. */
    idempotencyKey?: string;
}

/** Someone subscribed to a channel, as presence lists them. */
export interface PresenceClient {
    id: string;
    info: unknown;
    transport: string;
    user?: string | null;
}

export interface Event<Type extends string = string> {
    type: Type;
    target: Client;
}

export interface OpenEvent extends Event<"open"> {
    transport: Transport;
}

export interface MessageEvent extends Event<"message">, Message {}

export interface Message extends Position {
    channel: string;
    data: string | ArrayBuffer;
    id: string;
    time: Date;
    publisher: string | null;
}

export interface CloseEvent extends Event<"close"> {
    code: number;
    reason: string;
    wasClean: boolean;
}

export interface ErrorEvent extends Event<"error"> {
    message: string;
    code?: number | string;
    channel?: string;
}

export interface SubscribedEvent extends Event<"subscribed">, Position {
    channel: string;
    /** Whether the subscription resumed from the client's position (WebSocket and SSE say). */
    recovered?: boolean;
}

export interface RecoveryFailedEvent extends Event<"recoveryfailed"> {
    channel: string;
    lostPosition: Position | null;
    position: Position | null;
}

export interface PresenceEvent<Type extends "join" | "leave" = "join" | "leave"> extends Event<Type> {
    channel: string;
    client: PresenceClient;
}

export interface EventMap {
    open: OpenEvent;
    message: MessageEvent;
    close: CloseEvent;
    error: ErrorEvent;
    subscribed: SubscribedEvent;
    recoveryfailed: RecoveryFailedEvent;
    join: PresenceEvent<"join">;
    leave: PresenceEvent<"leave">;
}

/** A connection to a Squall server, kept up across drops. */
export class Client {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    static readonly TRANSPORTS: Transport[];
    static closeAdvice(code: number): CloseAdvice;

    /** Connects to the Squall at `url` (default: the page's origin). */
    constructor(url?: string, options?: ClientOptions);

    readonly url: string;
    readonly options: Required<ClientOptions>;
    readonly readyState: 0 | 1 | 2 | 3;
    /** The transport in use, once one is. */
    readonly transport: Transport | null;
    /** This connection's id (WebSocket transport). */
    readonly clientId: string | null;

    onopen: ((this: Client, event: OpenEvent) => void) | null;
    onmessage: ((this: Client, event: MessageEvent) => void) | null;
    onclose: ((this: Client, event: CloseEvent) => void) | null;
    onerror: ((this: Client, event: ErrorEvent) => void) | null;
    /** Every event has its `on…` handler, as the four above. */
    onsubscribed?: ((this: Client, event: SubscribedEvent) => void) | null;
    onrecoveryfailed?: ((this: Client, event: RecoveryFailedEvent) => void) | null;
    onjoin?: ((this: Client, event: PresenceEvent<"join">) => void) | null;
    onleave?: ((this: Client, event: PresenceEvent<"leave">) => void) | null;

    addEventListener<K extends keyof EventMap>(type: K, listener: (this: Client, event: EventMap[K]) => void): void;
    removeEventListener<K extends keyof EventMap>(type: K, listener: (this: Client, event: EventMap[K]) => void): void;

    /** Publishes to the default channel, like WebSocket.send. */
    send(data: Data): Promise<Acknowledgement>;
    /** Closes for good: no reconnect. */
    close(): void;

    /** Receives the channel's messages; kept across reconnects. */
    subscribe(channel: string, options?: SubscribeOptions): void;
    unsubscribe(channel: string): void;
    /** Publishes once, retrying a publish whose answer was lost under its idempotency key. */
    publish(channel: string, data: Data, options?: PublishOptions): Promise<Acknowledgement>;
    /** Who is subscribed to `channel`. */
    presence(channel: string): Promise<PresenceClient[]>;
    /** The latest retained messages of `channel`, at most `limit` (default 100). */
    history(channel: string, limit?: number): Promise<Message[]>;
}

export const TRANSPORTS: Transport[];
export function closeAdvice(code: number): CloseAdvice;
/** The client's version, the same as the server's that serves it. */
export const version: string;

/** Everything above as one object: the module's default export, and the script tag's global. */
declare const Squall: {
Client: typeof Client;
TRANSPORTS: Transport[];
closeAdvice: typeof closeAdvice;
version: string;
};
export default Squall;

/** With the script tag, the global `Squall` (`Squall.Client`, and the types as `Squall.Message`, …). */
export as namespace Squall;
