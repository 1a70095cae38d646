// SPDX-License-Identifier: Apache-2.0

/*
 * squall.js — the Squall browser client. Plain JavaScript, no build step.
 *
 *   <script src="/squall.js"></script>            → window.Squall
 *   import Squall from '/squall.mjs';              → the same object, as an ES module
 *
 * It feels like the browser's WebSocket (onopen, onmessage, onclose, onerror, send, close,
 * addEventListener) and adds channels, presence and history over every Squall transport:
 * WebSocket (the squall.v1 protocol on /ws), Server-Sent Events, long polling and short
 * polling. It falls back when a transport cannot connect or dies right after opening,
 * reconnects with exponential backoff and jitter, and resumes every channel from its last
 * position: nothing lost, nothing twice. When the server says a position is gone, it fires a
 * `recoveryfailed` event so the application can reload.
 *
 * With `getToken` (a function returning a connection token, or a promise of one) it asks the
 * application for a token before connecting, again shortly before the token expires (sending
 * it to the server with `refresh` on a WebSocket), and after the server closes with a code of
 * the credentials range (4000–4009: 4001 unauthorized, 4002 token expired, 4003 permission
 * denied). What it does after a close depends on the code's range, not on a list of codes
 * (`Squall.closeAdvice`): refresh the token and reconnect, reconnect and resume, or give up.
 */
(function (global) {
  'use strict';

  var TRANSPORTS = ['websocket', 'sse', 'longpoll', 'shortpoll'];

  var DEFAULTS = {
    transports: TRANSPORTS,   // tried in this order
    channel: 'msg',           // where send() publishes
    name: null,               // shown to others in presence
    presence: true,           // ask for join/leave events where the transport has them
    minReconnectDelay: 500,   // ms; doubles per failed attempt, with jitter
    maxReconnectDelay: 10000,
    openTimeout: 5000,        // ms a transport may take to open before the next is tried
    stableAfter: 3000,        // ms a transport must stay up to count as working
    shortPollInterval: 1000,  // ms between short polls
    longPollWait: 25,         // s a long poll may wait
    publishRetries: 5,        // times a publish whose answer was lost is sent again
    getToken: null,           // () => token or Promise<token>: the application's connection token
    getSubscriptionToken: null, // (channel) => token or Promise<token>, for channels of private namespaces
    tokenRefreshMargin: 10000 // ms before a token's exp that a fresh one is asked for
  };

  function Client(url, options) {
    if (!(this instanceof Client)) return new Client(url, options);
    var base = url || global.location.origin;
    this.url = String(base).replace(/\/+$/, '');
    this.options = Object.assign({}, DEFAULTS, options || {});
    this.transport = null;          // the transport in use: 'websocket', 'sse', 'longpoll', 'shortpoll'
    this.readyState = Client.CONNECTING;
    this.clientId = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this._listeners = {};
    this._channels = {};            // name -> {position: {epoch, offset}|null, presence}
    this._attempt = 0;              // index into options.transports
    this._failures = 0;             // consecutive failed connects, for backoff
    this._knownGood = null;         // the last transport that stayed up: retried, not skipped
    this._session = null;
    this._awaiting = [];            // channels to hear `subscribed` for before `open` fires
    this._closedByUser = false;
    this._token = null;             // the connection token getToken last gave
    this._tokenTimer = null;        // asks for a fresh token before this one expires
    this.subscribe(this.options.channel);
    this._connect();
  }

  Client.CONNECTING = 0;
  Client.OPEN = 1;
  Client.CLOSING = 2;
  Client.CLOSED = 3;
  Client.TRANSPORTS = TRANSPORTS;

  /** What to do after the server closes with `code`, by its range (docs/protocol.md):
   *  'refresh' (4000–4009: get a new token, then reconnect), 'giveup' (4500–4999: the server
   *  will refuse again, whatever the client does), else 'reconnect' (and resume). */
  function closeAdvice(code) {
    if (code >= 4000 && code <= 4009) return 'refresh';
    if (code >= 4500 && code <= 4999) return 'giveup';
    return 'reconnect';
  }
  Client.closeAdvice = closeAdvice;

  // ---- WebSocket-like surface ------------------------------------------------------------

  Client.prototype.addEventListener = function (type, listener) {
    (this._listeners[type] = this._listeners[type] || []).push(listener);
  };

  Client.prototype.removeEventListener = function (type, listener) {
    var list = this._listeners[type] || [];
    var index = list.indexOf(listener);
    if (index >= 0) list.splice(index, 1);
  };

  Client.prototype._emit = function (type, detail) {
    var event = Object.assign({ type: type, target: this }, detail || {});
    var handler = this['on' + type];
    if (typeof handler === 'function') handler.call(this, event);
    (this._listeners[type] || []).slice().forEach(function (listener) { listener.call(this, event); }, this);
  };

  /** Publishes `data` to the default channel, like WebSocket.send. Returns the ack promise. */
  Client.prototype.send = function (data) {
    return this.publish(this.options.channel, data);
  };

  /** Closes for good: no reconnect. */
  Client.prototype.close = function () {
    this._closedByUser = true;
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._tokenTimer);
    this.readyState = Client.CLOSED;
    if (this._session) this._session.stop();
    this._session = null;
    this._emit('close', { code: 1000, reason: 'closed by client', wasClean: true });
  };

  // ---- Channels --------------------------------------------------------------------------

  /** Subscribes to `channel` (kept across reconnects); messages arrive as `message` events. */
  Client.prototype.subscribe = function (channel, options) {
    if (!this._channels[channel]) {
      this._channels[channel] = { position: null, presence: !options || options.presence !== false };
      if (this._session && this._session.open) this._session.subscribe(channel, null);
    }
  };

  Client.prototype.unsubscribe = function (channel) {
    if (!this._channels[channel]) return;
    delete this._channels[channel];
    if (this._session && this._session.open) this._session.unsubscribe(channel);
  };

  /** Publishes to `channel`; resolves with {id, epoch, offset, time}. Strings are text; an
   *  ArrayBuffer or typed array is binary. Every publish carries an idempotency key —
   *  `options.idempotencyKey` (1–255 visible ASCII characters), or one made up — so that one
   *  whose answer was lost (the connection dropped, the server went away, its store was briefly
   *  unavailable) is sent again, over whatever transport is up, up to `publishRetries` times
   *  with backoff, and published once. A refusal of the request itself is not retried. */
  Client.prototype.publish = function (channel, data, options) {
    var self = this;
    var key = (options && options.idempotencyKey) || newIdempotencyKey();
    function attempt(tries) {
      return self._publishOnce(channel, data, key).catch(function (error) {
        if (tries >= self.options.publishRetries || self._closedByUser || !isRetryable(error)) throw error;
        return new Promise(function (resolve) { setTimeout(resolve, Math.min(4000, 250 * Math.pow(2, tries))); })
          .then(function () { return attempt(tries + 1); });
      });
    }
    return attempt(0);
  };

  Client.prototype._publishOnce = function (channel, data, key) {
    if (this._session && this._session.open && this._session.publish) return this._session.publish(channel, data, key);
    return httpPublish(this.url, channel, data, key, this._token);
  };

  /** Resolves with [{id, info, transport, user}] for `channel`. */
  Client.prototype.presence = function (channel) {
    return getJSON(this.url + '/channels/' + encodeURIComponent(channel) + '/presence', null, this._token)
      .then(function (body) { return body.clients; });
  };

  /** Resolves with the latest retained messages of `channel` (at most `limit`). */
  Client.prototype.history = function (channel, limit) {
    return getJSON(this.url + '/channels/' + encodeURIComponent(channel) + '/history?limit=' + (limit || 100), null, this._token)
      .then(function (body) { return body.messages.map(decodeEnvelope); });
  };

  // ---- Tokens ----------------------------------------------------------------------------

  /** Resolves once the client holds a token, asking `getToken` when it has none (a first
   *  connect, or a close that asked for a new one); without `getToken`, at once. */
  Client.prototype._ensureToken = function () {
    var client = this;
    if (typeof this.options.getToken !== 'function' || this._token) return Promise.resolve();
    return askForToken(this.options).then(function (token) {
      client._setToken(token);
    });
  };

  /** Keeps `token`, and asks for the next one `tokenRefreshMargin` before it expires: a
   *  WebSocket session hands it to the server with `refresh`; the other transports send it with
   *  their next request. */
  Client.prototype._setToken = function (token) {
    var client = this;
    this._token = token || null;
    clearTimeout(this._tokenTimer);
    var expires = tokenExpiry(this._token);
    if (!expires || this._closedByUser) return;
    var due = expires - this.options.tokenRefreshMargin;
    // setTimeout fires at once for delays past 2^31 - 1 ms (24.8 days): wait in steps.
    var wait = function () {
      var delay = Math.max(1000, due - Date.now());
      client._tokenTimer = setTimeout(delay > MAX_TIMEOUT ? wait : refresh, Math.min(delay, MAX_TIMEOUT));
    };
    var refresh = function () {
      if (client._closedByUser) return;
      askForToken(client.options).then(function (fresh) {
        client._setToken(fresh);
        if (client._session && client._session.refresh) client._session.refresh(client._token);
      }, function (error) {
        client._emit('error', { message: 'getToken failed: ' + (error && error.message || error) });
      });
    };
    wait();
  };

  /** Resolves with a subscription token for `channel` from `getSubscriptionToken`, or null
   *  without one; asked at every subscribe, so a resubscribe after a drop gets a fresh one. */
  Client.prototype._subscriptionToken = function (channel) {
    var options = this.options;
    if (typeof options.getSubscriptionToken !== 'function') return Promise.resolve(null);
    return new Promise(function (resolve) { resolve(options.getSubscriptionToken(channel)); });
  };

  // ---- Connection life cycle -------------------------------------------------------------

  Client.prototype._connect = function () {
    if (this._closedByUser) return;
    var client = this;
    this._ensureToken().then(function () { client._connectNow(); }, function (error) {
      client._emit('error', { message: 'getToken failed: ' + (error && error.message || error) });
      client._scheduleReconnect();
    });
  };

  Client.prototype._connectNow = function () {
    if (this._closedByUser) return;
    var transports = this.options.transports;
    var name = transports[this._attempt % transports.length];
    var Session = SESSIONS[name];
    var client = this;
    var opened = false;
    var openedAt = 0;
    this.readyState = Client.CONNECTING;
    var session = new Session(this, {
      open: function () {
        opened = true;
        openedAt = Date.now();
        clearTimeout(openTimer);
        client.transport = name;
        // `open` fires once every channel is subscribed again: nothing published after it is
        // missed, and a message sent from an onopen handler reaches this client too.
        client._awaiting = Object.keys(client._channels);
        client._awaiting.slice().forEach(function (channel) {
          session.subscribe(channel, client._channels[channel].position);
        });
        client._announceOpen();
        client._stableTimer = setTimeout(function () {
          client._failures = 0;
          client._knownGood = name;
        }, client.options.stableAfter);
      },
      lost: function (reason) {
        if (session !== client._session) return;
        clearTimeout(openTimer);
        clearTimeout(client._stableTimer);
        session.stop();
        client._session = null;
        var wasOpen = client.readyState === Client.OPEN;
        // A transport that failed to open, or died before it proved stable (a middlebox that
        // kills WebSockets right after the handshake), is skipped: the next one is tried. One
        // that has worked before is retried instead: the server is down, not the transport.
        var code = reason && reason.code || 1006;
        var advice = closeAdvice(code);
        // A close the server chose (Squall's own codes: a token refused or expired) says
        // nothing of the transport; 1006 and the like do.
        var early = !opened || Date.now() - openedAt < client.options.stableAfter;
        if (early && name !== client._knownGood && !(code >= 4000)) client._attempt += 1;
        // A token that expired (4002) is replaced; one the timer already replaced is kept.
        if (advice === 'refresh' && !(code === 4002 && tokenExpiry(client._token) > Date.now() + 1000)) client._token = null;
        if (wasOpen || advice === 'giveup') {
          client.readyState = advice === 'giveup' ? Client.CLOSED : Client.CONNECTING;
          client._emit('close', { code: code, reason: reason && reason.reason || '', wasClean: false });
        }
        client._emit('error', { message: 'transport ' + name + ' lost: ' + (reason && reason.reason || 'connection failed'), code: code });
        if (advice === 'giveup') {
          client._closedByUser = true;
          clearTimeout(client._tokenTimer);
          return;
        }
        client._scheduleReconnect();
      }
    });
    var openTimer = setTimeout(function () { session.fail({ reason: 'open timed out' }); }, this.options.openTimeout);
    this._session = session;
    session.start();
  };

  Client.prototype._announceOpen = function () {
    if (this._awaiting.length || this.readyState === Client.OPEN || !this._session) return;
    this.readyState = Client.OPEN;
    this._emit('open', { transport: this.transport });
  };

  Client.prototype._scheduleReconnect = function () {
    if (this._closedByUser) return;
    this._failures += 1;
    var client = this;
    this._reconnectTimer = setTimeout(function () { client._connect(); }, backoff(this.options, this._failures - 1));
  };

  /** Called by sessions for every message envelope: drops what was already delivered (so a
   *  replay that overlaps never shows a message twice) and advances the channel's position. */
  Client.prototype._deliver = function (envelope) {
    var state = this._channels[envelope.channel];
    if (!state) return;
    var position = state.position;
    if (position && position.epoch === envelope.epoch && envelope.offset <= position.offset) return;
    state.position = { epoch: envelope.epoch, offset: envelope.offset };
    this._emit('message', decodeEnvelope(envelope));
  };

  /** Called by sessions when a subscription is confirmed. */
  Client.prototype._subscribed = function (reply) {
    var state = this._channels[reply.channel];
    if (!state) return;
    if (reply.recovered === false) {
      var lost = state.position;
      state.position = { epoch: reply.epoch, offset: reply.offset };
      this._emit('recoveryfailed', { channel: reply.channel, lostPosition: lost, position: state.position });
    } else if (!state.position) {
      state.position = { epoch: reply.epoch, offset: reply.offset };
    }
    this._emit('subscribed', { channel: reply.channel, recovered: reply.recovered, epoch: reply.epoch, offset: reply.offset });
    var index = this._awaiting ? this._awaiting.indexOf(reply.channel) : -1;
    if (index >= 0) {
      this._awaiting.splice(index, 1);
      this._announceOpen();
    }
  };

  Client.prototype._presence = function (type, event) {
    this._emit(type, { channel: event.channel, client: event.client });
  };

  // ---- Sessions: one per transport, each a thin adapter ------------------------------------
  //
  // A session has start(), stop(), fail(reason), subscribe(channel, position),
  // unsubscribe(channel), optionally publish(channel, data), and an `open` flag. It reports
  // through the hooks it was given (open, lost) and the client's _deliver/_subscribed/_presence.

  function WebSocketSession(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.open = false;
    this.pending = {};
    this.nextRef = 1;
  }

  WebSocketSession.prototype.start = function () {
    var self = this;
    var url = this.client.url.replace(/^http/, 'ws') + '/ws';
    var socket;
    try {
      socket = new global.WebSocket(url, 'squall.v1');
    } catch (error) {
      setTimeout(function () { self.fail({ reason: String(error) }); }, 0);
      return;
    }
    this.socket = socket;
    socket.onmessage = function (event) { self.receive(JSON.parse(event.data)); };
    this.token = this.client._token;
    socket.onclose = function (event) { self.fail({ code: event.code, reason: event.reason || 'socket closed' }); };
    socket.onerror = function () { /* onclose follows */ };
  };

  WebSocketSession.prototype.receive = function (event) {
    var client = this.client;
    switch (event.type) {
      case 'welcome':
        client.clientId = event.client;
        // The token goes in the first message rather than the URL, so that a refusal is a
        // close with its code (4001) that the browser shows, not a failed handshake.
        if (this.token) {
          this.request({ op: 'connect', token: this.token, ref: 'connect' });
          break;
        }
        this.open = true;
        this.hooks.open();
        break;
      case 'connected':
        this.open = true;
        this.hooks.open();
        break;
      case 'refreshed': break;
      case 'message': client._deliver(event); break;
      case 'subscribed':
        delete this.pending[event.ref];
        client._subscribed(event);
        break;
      case 'join': case 'leave': client._presence(event.type, event); break;
      case 'published': case 'error': {
        var waiter = this.pending[event.ref];
        delete this.pending[event.ref];
        if (waiter && waiter.subscribe) {
          this.subscribeFailed(waiter, event);
        } else if (waiter) {
          if (event.type === 'error') waiter.reject(new Error(event.code + ': ' + event.message));
          else waiter.resolve({ id: event.id, epoch: event.epoch, offset: event.offset, time: event.time });
        } else if (event.type === 'error') {
          client._emit('error', { message: event.code + ': ' + event.message, code: event.code });
        }
        break;
      }
    }
  };

  WebSocketSession.prototype.request = function (body) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(body));
  };

  WebSocketSession.prototype.subscribe = function (channel, position, attempt) {
    var state = this.client._channels[channel] || {};
    var ref = 's' + this.nextRef++;
    this.pending[ref] = { subscribe: channel, attempt: attempt || 0 };
    var body = { op: 'subscribe', channel: channel, ref: ref, presence: !!(this.client.options.presence && state.presence) };
    if (this.client.options.name) body.info = { name: this.client.options.name };
    if (position) body.since = position;
    var self = this;
    var client = this.client;
    client._subscriptionToken(channel).then(function (token) {
      if (token) {
        body.token = token;
        // Subscribing again with a fresh token before this one expires renews the grant.
        var expires = tokenExpiry(token);
        if (expires) {
          var delay = Math.min(MAX_TIMEOUT, Math.max(1000, expires - Date.now() - client.options.tokenRefreshMargin));
          setTimeout(function () {
            var current = client._channels[channel];
            if (current && client._session === self && self.open && !self.stopped) self.subscribe(channel, current.position);
          }, delay);
        }
      }
      self.request(body);
    }, function (error) {
      client._emit('error', { message: 'getSubscriptionToken failed: ' + (error && error.message || error), channel: channel });
    });
  };

  /** A subscribe the server could not serve now — the channel's store did not answer in time
   *  (`store_unavailable`), or the client subscribed faster than its rate (`rate_limited`) — is
   *  sent again after a backoff, from the position the client holds by then; any other refusal
   *  is the application's to hear. */
  WebSocketSession.prototype.subscribeFailed = function (waiter, event) {
    var self = this;
    var client = this.client;
    var channel = waiter.subscribe;
    if (event.code !== 'store_unavailable' && event.code !== 'rate_limited') {
      client._emit('error', { message: event.code + ': ' + event.message, code: event.code, channel: channel });
      return;
    }
    setTimeout(function () {
      var state = client._channels[channel];
      if (!state || !self.open || self.socket.readyState !== 1) return;  // unsubscribed, or a new session resubscribes
      self.subscribe(channel, state.position, waiter.attempt + 1);
    }, backoff(client.options, waiter.attempt));
  };

  /** Hands the server a fresh token before the one it holds expires. */
  WebSocketSession.prototype.refresh = function (token) {
    this.request({ op: 'refresh', token: token, ref: 'refresh' });
  };

  WebSocketSession.prototype.unsubscribe = function (channel) {
    this.request({ op: 'unsubscribe', channel: channel });
  };

  WebSocketSession.prototype.publish = function (channel, data, idempotencyKey) {
    var self = this;
    var ref = 'p' + this.nextRef++;
    return new Promise(function (resolve, reject) {
      self.pending[ref] = { resolve: resolve, reject: reject };
      var body = { op: 'publish', channel: channel, ref: ref };
      if (idempotencyKey) body.idempotency_key = idempotencyKey;
      if (typeof data === 'string') body.data = data;
      else { body.data = toBase64(data); body.encoding = 'base64'; }
      self.request(body);
    });
  };

  WebSocketSession.prototype.fail = function (reason) {
    if (this.stopped) return;
    this.rejectPending(reason);
    this.hooks.lost(reason);
  };

  WebSocketSession.prototype.rejectPending = function (reason) {
    var pending = this.pending;
    this.pending = {};
    Object.keys(pending).forEach(function (ref) { pending[ref].reject(new Error('connection lost: ' + (reason && reason.reason))); });
  };

  WebSocketSession.prototype.stop = function () {
    this.stopped = true;
    this.open = false;
    this.rejectPending({ reason: 'stopped' });
    if (this.socket) {
      this.socket.onclose = this.socket.onmessage = this.socket.onerror = null;
      try { this.socket.close(); } catch (ignored) { /* already closed */ }
    }
  };

  /** Server-Sent Events: one EventSource per channel; publishing goes over HTTP POST. */
  function EventSourceSession(client, hooks) {
    this.client = client;
    this.hooks = hooks;
    this.open = false;
    this.sources = {};
  }

  EventSourceSession.prototype.start = function () {
    var self = this;
    if (typeof global.EventSource !== 'function') {
      setTimeout(function () { self.fail({ reason: 'EventSource is not available' }); }, 0);
      return;
    }
    probe(this);
  };

  EventSourceSession.prototype.subscribe = function (channel, position) {
    var self = this;
    var client = this.client;
    var state = client._channels[channel] || {};
    var query = [];
    if (position) query.push('since=' + encodeURIComponent(position.epoch + ':' + position.offset));
    if (client.options.presence && state.presence) query.push('presence=1');
    if (client.options.name) query.push('name=' + encodeURIComponent(client.options.name));
    // EventSource sends no headers of the page's: the tokens go in the query.
    if (client._token) query.push('token=' + encodeURIComponent(client._token));
    client._subscriptionToken(channel).then(function (token) {
      if (self.stopped || !client._channels[channel]) return;
      if (token) query.push('subscription_token=' + encodeURIComponent(token));
      self.openStream(channel, query);
    }, function (error) { self.fail({ reason: 'getSubscriptionToken failed: ' + error }); });
  };

  EventSourceSession.prototype.openStream = function (channel, query) {
    var self = this;
    var client = this.client;
    var source = new global.EventSource(client.url + '/channels/' + encodeURIComponent(channel) + '/events' + (query.length ? '?' + query.join('&') : ''));
    this.sources[channel] = source;
    source.addEventListener('subscribed', function (event) { client._subscribed(JSON.parse(event.data)); });
    source.addEventListener('message', function (event) { client._deliver(JSON.parse(event.data)); });
    source.addEventListener('join', function (event) { client._presence('join', JSON.parse(event.data)); });
    source.addEventListener('leave', function (event) { client._presence('leave', JSON.parse(event.data)); });
    // The server's last event says why it ended the stream: a token expired (4002), a node's
    // log restarted (4011), a shutdown (1001).
    source.addEventListener('close', function (event) {
      var detail = JSON.parse(event.data);
      self.fail({ code: detail.code, reason: detail.reason });
    });
    // The browser would reconnect an EventSource on its own, but then the client could not tell
    // the application, back off, or fall back: any error ends the session, and the client
    // reconnects every channel from the positions it tracked.
    source.onerror = function () { self.fail({ reason: 'event stream failed' }); };
  };

  EventSourceSession.prototype.unsubscribe = function (channel) {
    if (this.sources[channel]) this.sources[channel].close();
    delete this.sources[channel];
  };

  EventSourceSession.prototype.fail = function (reason) {
    if (this.stopped) return;
    this.hooks.lost(reason);
  };

  EventSourceSession.prototype.stop = function () {
    this.stopped = true;
    this.open = false;
    var sources = this.sources;
    Object.keys(sources).forEach(function (channel) { sources[channel].close(); });
    this.sources = {};
  };

  /** Long and short polling: one request loop per channel; stateless on the server. */
  function PollingSession(client, hooks, wait) {
    this.client = client;
    this.hooks = hooks;
    this.wait = wait;
    this.open = false;
    this.loops = {};
  }

  PollingSession.prototype.start = function () {
    probe(this);
  };

  /** Opens an HTTP-based session once the server answers, so that an unreachable server is a
   *  failure to open rather than an open transport that never delivers. */
  function probe(session) {
    getJSON(session.client.url + '/healthz').then(function () {
      if (session.stopped) return;
      session.open = true;
      session.hooks.open();
    }, function (error) { session.fail({ reason: String(error) }); });
  }

  PollingSession.prototype.subscribe = function (channel, position) {
    var self = this;
    var client = this.client;
    var loop = { active: true };
    this.loops[channel] = loop;
    var path = client.url + '/channels/' + encodeURIComponent(channel);
    var since = position;
    var resuming = !!position;
    var subscription = '';
    function fail(error) {
      // 401 and 403 are the credentials range's 4001 and 4003 on a socket.
      var code = error && error.status === 401 ? 4001 : error && error.status === 403 ? 4003 : undefined;
      if (loop.active && !self.stopped) self.fail({ code: code, reason: String(error) });
    }
    function poll() {
      if (!loop.active || self.stopped) return;
      var query = 'wait=' + self.wait + '&since=' + encodeURIComponent(since.epoch + ':' + since.offset) + subscription;
      loop.controller = typeof AbortController === 'function' ? new AbortController() : null;
      getJSON(path + '/messages?' + query, loop.controller, client._token).then(function (page) {
        if (!loop.active || self.stopped) return;
        if (resuming || page.recovered === false) {
          client._subscribed({ channel: channel, epoch: page.epoch, offset: page.offset, recovered: page.recovered });
          resuming = false;
        }
        page.messages.forEach(function (envelope) { client._deliver(envelope); });
        since = { epoch: page.epoch, offset: page.offset };
        if (self.wait > 0) poll(); else loop.timer = setTimeout(poll, client.options.shortPollInterval);
      }, fail);
    }
    client._subscriptionToken(channel).then(function (token) {
      if (token) subscription = '&subscription_token=' + encodeURIComponent(token);
      start();
    }, fail);
    function start() {
      if (since) return poll();
      // A fresh subscription starts from now, as on the other transports: the position of the
    // latest message, or — where the namespace lets this client subscribe but not read history
    // — what a poll without a position answers there, which starts from now.
      getJSON(path + '/history?limit=1', null, client._token).catch(function (error) {
        if (error.status !== 403) throw error;
        return getJSON(path + '/messages?wait=0&limit=1' + subscription, null, client._token);
      }).then(function (head) {
        if (!loop.active || self.stopped) return;
        client._subscribed({ channel: channel, epoch: head.epoch, offset: head.offset });
        since = { epoch: head.epoch, offset: head.offset };
        poll();
      }, fail);
    }
  };

  PollingSession.prototype.unsubscribe = function (channel) {
    var loop = this.loops[channel];
    if (!loop) return;
    loop.active = false;
    clearTimeout(loop.timer);
    if (loop.controller) loop.controller.abort();
    delete this.loops[channel];
  };

  PollingSession.prototype.fail = function (reason) {
    if (this.stopped) return;
    this.hooks.lost(reason);
  };

  PollingSession.prototype.stop = function () {
    this.stopped = true;
    this.open = false;
    Object.keys(this.loops).forEach(this.unsubscribe, this);
  };

  function LongPollSession(client, hooks) { PollingSession.call(this, client, hooks, client.options.longPollWait); }
  LongPollSession.prototype = Object.create(PollingSession.prototype);
  function ShortPollSession(client, hooks) { PollingSession.call(this, client, hooks, 0); }
  ShortPollSession.prototype = Object.create(PollingSession.prototype);

  var SESSIONS = {
    websocket: WebSocketSession,
    sse: EventSourceSession,
    longpoll: LongPollSession,
    shortpoll: ShortPollSession
  };

  // ---- HTTP and encoding helpers -------------------------------------------------------------

  /** fetch, then the JSON body; a non-2xx answer rejects with the server's error code. */
  /** How long to wait before the try after `attempt` failed ones: doubling from
   *  `minReconnectDelay` up to `maxReconnectDelay`, with "equal jitter" (half fixed, half random)
   *  so that clients a restart disconnected together do not come back together. */
  function backoff(options, attempt) {
    var ceiling = Math.min(options.maxReconnectDelay, options.minReconnectDelay * Math.pow(2, attempt));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  /** Resolves with the JSON body. Rejects with an Error whose `status` is the HTTP status and
   *  whose message is Squall's error code (or the status, for a page that is not Squall's),
   *  or, when no answer came at all, with one whose `network` is true. */
  function requestJSON(url, init) {
    return fetch(url, Object.assign({ cache: 'no-store' }, init)).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (notJSON) { /* a proxy's page, say */ }
        if (!response.ok) {
          var error = new Error((body && body.error && body.error.code) || String(response.status));
          error.status = response.status;
          throw error;
        }
        if (body === null) throw new Error('the answer is not JSON');
        return body;
      });
    }, function (failure) {
      var error = new Error('network error: ' + (failure && failure.message));
      error.network = true;
      error.cause = failure;
      throw error;
    });
  }

  /** The longest delay setTimeout honours. */
  var MAX_TIMEOUT = 2147483647;

  /** The application's token, as a promise even when getToken returns one or throws. */
  function askForToken(options) {
    return new Promise(function (resolve) { resolve(options.getToken()); });
  }

  function getJSON(url, controller, token) {
    return requestJSON(url, { signal: controller ? controller.signal : undefined, headers: authorization(token, {}) });
  }

  /** `headers` with `Authorization: Bearer token` when there is a token. */
  function authorization(token, headers) {
    if (token) headers.Authorization = 'Bearer ' + token;
    return headers;
  }

  /** When a JWT expires, in ms since 1970, from its `exp` claim; 0 when it cannot tell. */
  function tokenExpiry(token) {
    try {
      var part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var claims = JSON.parse(global.atob(part + '==='.slice((part.length + 3) % 4)));
      return typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
    } catch (notAJWT) {
      return 0;
    }
  }

  /** A key no other publish will have: a v4 UUID where the browser makes them (secure
   *  contexts), else 128 random bits in hex. */
  function newIdempotencyKey() {
    var crypto = global.crypto;
    if (crypto && crypto.randomUUID) return 'sq-' + crypto.randomUUID();
    var hex = '';
    for (var i = 0; i < 32; i++) hex += Math.floor(Math.random() * 16).toString(16);
    return 'sq-' + hex;
  }

  /** Whether a failed publish may have been lost on the way rather than refused: a dropped
   *  connection, no answer at all, a 502/503/504 (a proxy with no server behind it, or the
   *  store unavailable). Any other answer is a refusal of the request itself. */
  function isRetryable(error) {
    if (!error) return false;
    if (error.network || error.status === 502 || error.status === 503 || error.status === 504) return true;
    return /^connection lost|^store_unavailable/.test(String(error.message));
  }

  function httpPublish(base, channel, data, idempotencyKey, token) {
    var binary = typeof data !== 'string';
    var headers = authorization(token, { 'Content-Type': binary ? 'application/octet-stream' : 'text/plain; charset=utf-8' });
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    return requestJSON(base + '/channels/' + encodeURIComponent(channel) + '/messages', {
      method: 'POST',
      headers: headers,
      body: data
    }).then(function (body) {
      return { id: body.id, epoch: body.epoch, offset: body.offset, time: body.time };
    });
  }

  function decodeEnvelope(envelope) {
    var data = envelope.encoding === 'base64' ? fromBase64(envelope.data) : envelope.data;
    return {
      channel: envelope.channel,
      data: data,
      id: envelope.id,
      epoch: envelope.epoch,
      offset: envelope.offset,
      time: new Date(envelope.time),
      publisher: envelope.publisher || null
    };
  }

  function toBase64(data) {
    var bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    var text = '';
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return global.btoa(text);
  }

  function fromBase64(text) {
    var raw = global.atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  // The server's version, which serves this file (a test holds them equal, and package.json's).
  global.Squall = { Client: Client, TRANSPORTS: TRANSPORTS, closeAdvice: closeAdvice, version: '0.9.0' };
  // require('squall') (CommonJS: Node, bundlers, test runners) gets the same object.
  if (typeof module === 'object' && module && module.exports) {
    module.exports = global.Squall;
    module.exports.default = global.Squall;
  }
})(typeof globalThis !== 'undefined' ? globalThis : window);
