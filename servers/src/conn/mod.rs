//! What several models share, one layer beneath them: the models decide *who* runs a connection
//! and *when*; this layer holds *how* a connection is served once it runs.
//!
//! | piece | used by | what it is |
//! | --- | --- | --- |
//! | [`blocking_io`] | `blocking`, `thread-per-connection`, `thread-pool` (the connection loop also `process-per-connection`) | the accept loop and the blocking read-answer-write loop of one connection |
//! | [`blocking_chat`] | the same three | one chat member served by a reader and a writer thread |
//! | [`chat_room`] | the same three, and `async` | a locked list of members with bounded mailboxes |
//! | [`nonblocking`] | `reactor`, `multi-reactor` (and `io-uring`: its phases, buffer pool, high water and `serve_input`) | one connection of an event loop: non-blocking socket, explicit buffers and phase |
//! | [`table`] | the same two | an event loop's connections, whose turn is next, and the timers of those closing |
//! | [`loop_room`], [`loop_chat`] | the same two | chat through that table: each member's queue, and how lines are routed to them |
//! | [`deadline`] | every model | the request, idle and write timeouts, and one clock per connection that says which runs |
//! | [`admission`] | every model | `--max-conns`: the count of open connections, and the polite refusal of one more |
//!
//! Nothing here chooses threads or readiness: a piece that did would be a model.

pub mod admission;
pub mod blocking_chat;
pub mod blocking_io;
pub mod chat_room;
pub mod deadline;
pub mod loop_chat;
pub mod loop_room;
pub mod nonblocking;
pub mod table;
