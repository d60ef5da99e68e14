//! The `kv` protocol without sockets: every command, every error, every limit at and one past,
//! and the promise that however the stream is split, the replies are the same.

use proptest::prelude::*;

use super::super::testing::{Transcript, run};
use super::super::{Codec, Decoded, Proto};
use super::{MAX_ARGS, REQUEST_SLACK};
use crate::store::LocalStore;

/// The argument limit (`--max-frame`) in most tests: small, so limits are cheap to reach.
const MAX: usize = 16;

/// A command as a RESP array of bulk strings, written out by hand (not by the server's code).
fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn whole_with(max: usize, stream: &[u8]) -> Transcript {
    run(Proto::Kv, max, stream, &[])
}

fn whole(stream: &[u8]) -> Transcript {
    whole_with(MAX, stream)
}

/// The replies to `requests`, sent one after another on one connection.
fn replies(requests: &[Vec<u8>]) -> String {
    replies_with(MAX, requests)
}

fn replies_with(max: usize, requests: &[Vec<u8>]) -> String {
    let t = whole_with(max, &requests.concat());
    assert!(!t.malformed, "unexpected protocol error: {:?}", String::from_utf8_lossy(&t.out));
    String::from_utf8(t.out).unwrap()
}

/// The reply to a stream that must end in a protocol error.
fn refused(max: usize, stream: &[u8]) -> String {
    let t = whole_with(max, stream);
    assert!(t.malformed, "expected a protocol error, got {:?}", String::from_utf8_lossy(&t.out));
    String::from_utf8(t.out).unwrap()
}

#[test]
fn ping_with_and_without_an_argument() {
    assert_eq!(replies(&[cmd(&[b"PING"]), cmd(&[b"PING", b"hi there"])]), "+PONG\r\n$8\r\nhi there\r\n");
    assert_eq!(
        replies(&[cmd(&[b"PING", b"a", b"b"])]),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
}

#[test]
fn set_then_get_and_get_of_a_missing_key() {
    let r = replies(&[
        cmd(&[b"GET", b"k"]),
        cmd(&[b"SET", b"k", b"v1"]),
        cmd(&[b"GET", b"k"]),
        cmd(&[b"SET", b"k", b"longer"]),
        cmd(&[b"GET", b"k"]),
    ]);
    assert_eq!(r, "$-1\r\n+OK\r\n$2\r\nv1\r\n+OK\r\n$6\r\nlonger\r\n");
}

#[test]
fn values_are_binary_safe_and_may_be_empty() {
    let value = b"a\r\nb\0c\n*1\r\n";
    let r = replies(&[cmd(&[b"SET", b"k", value]), cmd(&[b"GET", b"k"]), cmd(&[b"SET", b"", b""])]);
    assert_eq!(r, "+OK\r\n$11\r\na\r\nb\0c\n*1\r\n\r\n+OK\r\n");
    assert_eq!(replies(&[cmd(&[b"SET", b"", b""]), cmd(&[b"GET", b""])]), "+OK\r\n$0\r\n\r\n");
}

#[test]
fn del_and_exists_count_several_keys() {
    let r = replies(&[
        cmd(&[b"SET", b"a", b"1"]),
        cmd(&[b"SET", b"b", b"2"]),
        // Redis counts a key as often as it is named.
        cmd(&[b"EXISTS", b"a", b"b", b"missing", b"a"]),
        cmd(&[b"DEL", b"a", b"missing", b"b", b"a"]),
        cmd(&[b"EXISTS", b"a", b"b"]),
        cmd(&[b"DEL", b"a"]),
    ]);
    assert_eq!(r, "+OK\r\n+OK\r\n:3\r\n:2\r\n:0\r\n:0\r\n");
}

#[test]
fn incr_counts_from_zero_and_refuses_what_is_not_a_counter() {
    let r = replies_with(
        64,
        &[
            cmd(&[b"INCR", b"n"]),
            cmd(&[b"INCR", b"n"]),
            cmd(&[b"GET", b"n"]),
            cmd(&[b"SET", b"s", b"abc"]),
            cmd(&[b"INCR", b"s"]),
            cmd(&[b"SET", b"m", i64::MAX.to_string().as_bytes()]),
            cmd(&[b"INCR", b"m"]),
            cmd(&[b"SET", b"neg", b"-2"]),
            cmd(&[b"INCR", b"neg"]),
        ],
    );
    assert_eq!(
        r,
        ":1\r\n:2\r\n$1\r\n2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n\
         -ERR increment or decrement would overflow\r\n+OK\r\n:-1\r\n"
    );
}

#[test]
fn command_names_are_case_insensitive() {
    let r =
        replies(&[cmd(&[b"sEt", b"K", b"v"]), cmd(&[b"get", b"K"]), cmd(&[b"get", b"k"]), cmd(&[b"pInG"])]);
    assert_eq!(r, "+OK\r\n$1\r\nv\r\n$-1\r\n+PONG\r\n", "names are, keys are not");
}

#[test]
fn unknown_command_is_an_error_and_the_connection_goes_on() {
    let r = replies(&[cmd(&[b"FLUSHALL"]), cmd(&[b"COMMAND", b"DOCS"]), cmd(&[b"PING"])]);
    assert_eq!(
        r,
        "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n\
         -ERR unknown command 'COMMAND', with args beginning with: 'DOCS' \r\n+PONG\r\n"
    );
}

#[test]
fn bytes_quoted_in_an_error_cannot_break_its_line() {
    let r = replies(&[cmd(&[b"x\r\n+OK", b"a\nb"])]);
    assert_eq!(r, "-ERR unknown command 'x  +OK', with args beginning with: 'a b' \r\n");
    let long = [b'y'; 300];
    let r = whole_with(1024, &cmd(&[&long, &long])).out;
    assert_eq!(r.len(), "-ERR unknown command '', with args beginning with: '' \r\n".len() + 128 + 128);
}

#[test]
fn wrong_number_of_arguments_is_an_error_and_the_connection_goes_on() {
    let r = replies(&[
        cmd(&[b"GET"]),
        cmd(&[b"GET", b"a", b"b"]),
        cmd(&[b"SET", b"a"]),
        cmd(&[b"DEL"]),
        cmd(&[b"EXISTS"]),
        cmd(&[b"INCR"]),
        cmd(&[b"PING"]),
    ]);
    let expected: String = ["get", "get", "set", "del", "exists", "incr"]
        .iter()
        .map(|c| format!("-ERR wrong number of arguments for '{c}' command\r\n"))
        .chain(["+PONG\r\n".to_owned()])
        .collect();
    assert_eq!(r, expected);
}

#[test]
fn set_options_are_refused_and_change_nothing() {
    let r = replies(&[cmd(&[b"SET", b"k", b"v", b"EX", b"10"]), cmd(&[b"GET", b"k"])]);
    assert!(r.starts_with("-ERR SET options"), "{r}");
    assert!(r.ends_with("\r\n$-1\r\n"), "{r}");
}

#[test]
fn quit_answers_ok_and_ends_the_conversation() {
    let t = whole(&[cmd(&[b"QUIT"]), cmd(&[b"PING"])].concat());
    assert_eq!(t.out, b"+OK\r\n");
    assert!(!t.malformed);
    assert_eq!(t.requests, 1);
    let mut codec = Codec::new(Proto::Kv, MAX);
    let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
    assert_eq!(codec.decode(b"quit\r\nPING\r\n", &mut out, &store), Decoded::Last { consumed: 6 });
}

#[test]
fn inline_commands_as_typed_into_nc() {
    let r = replies_with(
        64,
        &[
            b"SET task_01 read-book\r\n".to_vec(),
            b"get task_01\n".to_vec(),
            b"  EXISTS \t task_01   nope \r\n".to_vec(),
            b"PING\n".to_vec(),
        ],
    );
    assert_eq!(r, "+OK\r\n$9\r\nread-book\r\n:1\r\n+PONG\r\n");
}

#[test]
fn inline_quotes_group_words_without_escapes() {
    let r = replies_with(
        64,
        &[
            b"SET greeting \"hello world\"\n".to_vec(),
            b"GET 'greeting'\n".to_vec(),
            b"SET e \"\"\n".to_vec(),
            b"GET e\n".to_vec(),
        ],
    );
    assert_eq!(r, "+OK\r\n$11\r\nhello world\r\n+OK\r\n$0\r\n\r\n");
    assert_eq!(refused(MAX, b"SET k \"open\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
    assert_eq!(refused(MAX, b"SET k \"a\"b\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
}

#[test]
fn empty_requests_get_no_reply() {
    let t = whole(b"\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n");
    assert_eq!(t.out, b"+PONG\r\n");
    assert_eq!(t.requests, 6);
}

#[test]
fn framing_errors_get_redis_wording_and_a_close() {
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*2\r\n$4\r\nPING\r\n+x\r\n", "expected '$', got '+'"),
        (b"*1\r\n\n", "expected '$', got ' '"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*+1\r\n", "invalid multibulk length"),
        (b"*1\rx", "invalid multibulk length"),
        (b"*123456789012345678901\r\n", "invalid multibulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$ 4\r\nPING\r\n", "invalid bulk length"),
        (b"*1\r\n$4\r\nPINGxx", "bulk string not followed by CRLF"),
    ];
    for (stream, why) in cases {
        let expected = format!("-ERR Protocol error: {why}\r\n");
        assert_eq!(refused(MAX, stream), expected, "for {:?}", String::from_utf8_lossy(stream));
    }
}

#[test]
fn replies_before_a_framing_error_are_kept() {
    let stream = [cmd(&[b"PING"]), b"*1\r\n?".to_vec(), cmd(&[b"PING"])].concat();
    assert_eq!(refused(MAX, &stream), "+PONG\r\n-ERR Protocol error: expected '$', got '?'\r\n");
}

#[test]
fn argument_exactly_at_the_limit_is_accepted() {
    let at = [b'v'; MAX];
    let r = replies(&[cmd(&[b"SET", &at, &at]), cmd(&[b"GET", &at])]);
    assert_eq!(r, format!("+OK\r\n${MAX}\r\n{}\r\n", "v".repeat(MAX)));
}

#[test]
fn argument_one_past_the_limit_is_refused_from_its_header_alone() {
    // Only the header has arrived: the decoder must not wait for the bytes it announces.
    let stream = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", MAX + 1);
    assert_eq!(refused(MAX, stream.as_bytes()), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(refused(MAX, b"*1\r\n$4294967296\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn argument_count_exactly_at_the_limit_is_accepted_one_past_refused() {
    let max = 4096; // room for MAX_ARGS arguments within one request
    let keys = vec![&b"k"[..]; MAX_ARGS - 1];
    let at = cmd(&[&[&b"EXISTS"[..]], &keys[..]].concat());
    let t = whole_with(max, &at);
    assert!(!t.malformed);
    assert_eq!(t.out, b":0\r\n");
    let past = format!("*{}\r\n", MAX_ARGS + 1);
    assert_eq!(refused(max, past.as_bytes()), "-ERR Protocol error: invalid multibulk length\r\n");
}

#[test]
fn request_exactly_at_the_length_limit_is_accepted_one_past_refused() {
    let limit = 2 * MAX + REQUEST_SLACK;
    assert_eq!(Codec::new(Proto::Kv, MAX).max_request_len(), limit);
    // `DEL` of `n` keys of `k` bytes and one short key of `pad` bytes (fewer than nine, so one
    // more byte of it makes the request exactly one byte longer).
    let header = |argc: usize| format!("*{argc}\r\n").len();
    let arg = |len: usize| format!("${len}\r\n").len() + len + 2;
    let total = |n: usize, k: usize, pad: usize| header(n + 2) + arg(3) + n * arg(k) + arg(pad);
    let (n, k) = (1..=MAX)
        .flat_map(|k| (0..MAX_ARGS - 1).map(move |n| (n, k)))
        .find(|&(n, k)| (0..9).any(|pad| total(n, k, pad) == limit))
        .unwrap();
    let pad = (0..9).find(|&pad| total(n, k, pad) == limit).unwrap();
    let request = |pad: usize| {
        let key = vec![b'k'; k];
        let padding = vec![b'p'; pad];
        let mut args = vec![&b"DEL"[..]];
        args.extend(std::iter::repeat_n(&key[..], n));
        args.push(&padding);
        cmd(&args)
    };
    let at = request(pad);
    assert_eq!(at.len(), limit);
    let t = whole(&at);
    assert!(!t.malformed, "{:?}", String::from_utf8_lossy(&t.out));
    assert_eq!(t.out, b":0\r\n");

    let past = request(pad + 1);
    assert_eq!(past.len(), limit + 1);
    let expected = format!("-ERR Protocol error: request longer than {limit} bytes\r\n");
    assert_eq!(refused(MAX, &past), expected);
    // Refused as soon as its last header announces the excess, before the bytes arrive.
    assert_eq!(refused(MAX, &past[..past.len() - (pad + 1) - 2]), expected);
}

#[test]
fn inline_line_exactly_at_the_limit_is_accepted_one_past_refused() {
    let mut at = b"PING ".to_vec();
    at.resize(MAX, b'x');
    for end in [&b"\n"[..], b"\r\n"] {
        let t = whole(&[&at[..], end].concat());
        assert!(!t.malformed);
        assert_eq!(t.out, format!("${}\r\n{}\r\n", MAX - 5, "x".repeat(MAX - 5)).into_bytes());
    }
    let mut past = at.clone();
    past.push(b'x');
    for end in [&b"\n"[..], b"\r\n"] {
        let t = whole(&[&past[..], end].concat());
        assert!(t.malformed);
        assert_eq!(t.out, b"-ERR Protocol error: too big inline request\r\n");
    }
}

#[test]
fn overlong_inline_line_is_caught_before_its_newline_arrives() {
    let mut codec = Codec::new(Proto::Kv, MAX);
    let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
    // MAX bytes and an `\r` may still end well; one byte more cannot.
    assert_eq!(codec.decode(&[&[b'x'; MAX][..], b"\r"].concat(), &mut out, &store), Decoded::Incomplete);
    assert_eq!(codec.decode(&[b'x'; MAX + 2], &mut out, &store), Decoded::Malformed);
}

#[test]
fn too_many_inline_words_are_refused() {
    let max = 4 * MAX_ARGS;
    let line = |words: usize| {
        let mut l = b"EXISTS".to_vec();
        l.extend(std::iter::repeat_n(&b" k"[..], words - 1).flatten());
        l.push(b'\n');
        l
    };
    assert_eq!(whole_with(max, &line(MAX_ARGS)).out, b":0\r\n");
    let expected = "-ERR Protocol error: too many arguments in inline request\r\n";
    assert_eq!(refused(max, &line(MAX_ARGS + 1)), expected);
}

#[test]
fn a_full_store_refuses_new_keys_and_the_connection_goes_on() {
    let store = LocalStore::new(crate::store::Capacity::keys(1));
    let stream = [
        cmd(&[b"SET", b"a", b"1"]),
        cmd(&[b"SET", b"b", b"2"]),
        cmd(&[b"INCR", b"c"]),
        cmd(&[b"SET", b"a", b"3"]),
        cmd(&[b"GET", b"a"]),
    ]
    .concat();
    let oom = "-OOM command not allowed: the store holds its maximum of 1 keys (--kv-max-keys)\r\n";
    assert_eq!(replies_to(&stream, &store), format!("+OK\r\n{oom}{oom}+OK\r\n$1\r\n3\r\n"));
}

#[test]
fn byte_at_a_time_matches_whole_stream() {
    let stream = [
        cmd(&[b"SET", b"key", b"value"]),
        b"GET key\r\n".to_vec(),
        cmd(&[b"INCR", b"n"]),
        cmd(&[b"NOPE", b"x"]),
        b"\r\n".to_vec(),
        cmd(&[b"DEL", b"key", b"n"]),
    ]
    .concat();
    let cuts: Vec<usize> = (1..stream.len()).collect();
    let t = run(Proto::Kv, MAX, &stream, &cuts);
    assert_eq!(t, whole(&stream));
    assert!(!t.malformed);
}

/// One request of a random conversation: mostly valid commands over a small key space, some
/// inline, some wrong; the stream may end with garbage, which must end it the same way.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![&b"a"[..], b"b", b"counter"]);
    let value = prop::collection::vec(any::<u8>(), 0..=MAX);
    prop_oneof![
        (key.clone(), value).prop_map(|(k, v)| cmd(&[b"SET", k, &v])),
        key.clone().prop_map(|k| cmd(&[b"GET", k])),
        key.clone().prop_map(|k| cmd(&[b"incr", k])),
        prop::collection::vec(key.clone(), 1..4).prop_map(|ks| cmd(&[&[&b"DEL"[..]], &ks[..]].concat())),
        prop::collection::vec(key.clone(), 1..4).prop_map(|ks| cmd(&[&[&b"EXISTS"[..]], &ks[..]].concat())),
        key.clone().prop_map(|k| [b"GET ", k, b"\r\n"].concat()),
        key.prop_map(|k| [b"set ", k, b" 7\n"].concat()),
        Just(cmd(&[b"PING"])),
        Just(cmd(&[b"HELLO", b"3"])),
        Just(b"\r\n".to_vec()),
    ]
}

fn conversation() -> impl Strategy<Value = Vec<u8>> {
    let tail = prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..40)];
    (prop::collection::vec(request(), 0..12), tail).prop_map(|(reqs, tail)| [reqs.concat(), tail].concat())
}

proptest! {
    /// However TCP splits the stream, the replies are the same bytes in the same order.
    #[test]
    fn any_split_gives_the_same_replies(stream in conversation(), mut cuts in prop::collection::vec(0usize..400, 0..30)) {
        cuts.sort_unstable();
        prop_assert_eq!(run(Proto::Kv, MAX, &stream, &cuts), whole(&stream));
    }
}

#[test]
fn a_connection_s_codec_fits_in_a_cache_line() {
    // Every idle `reactor` connection holds one, sized by the largest protocol's state (http's
    // parse positions, chat's prefix): kv's framing state, packed into 12 bytes, must not be
    // what pushes an idle connection past one cache line.
    assert!(
        std::mem::size_of::<super::Kv>() <= 3 * std::mem::size_of::<usize>(),
        "{}",
        std::mem::size_of::<super::Kv>()
    );
    assert!(std::mem::size_of::<Codec>() <= 64, "{}", std::mem::size_of::<Codec>());
}

#[test]
fn a_store_out_of_bytes_answers_oom_and_the_connection_goes_on() {
    use crate::store::capacity::ENTRY_OVERHEAD;
    let capacity = crate::store::Capacity { max_keys: 100, max_bytes: 1 + 10 + ENTRY_OVERHEAD };
    let store = LocalStore::new(capacity);
    let stream = [
        cmd(&[b"SET", b"a", b"0123456789"]),
        cmd(&[b"SET", b"b", b"1"]),
        cmd(&[b"SET", b"a", b"01234567890"]),
        cmd(&[b"GET", b"a"]),
    ]
    .concat();
    let max = 1 + 10 + ENTRY_OVERHEAD;
    let oom =
        format!("-OOM command not allowed: the store holds its maximum of {max} bytes (--kv-max-bytes)\r\n");
    assert_eq!(replies_to(&stream, &store), format!("+OK\r\n{oom}{oom}$10\r\n0123456789\r\n"));
}

/// Every reply to `stream`, a run of whole requests, decoded one after another.
fn replies_to(stream: &[u8], store: &LocalStore) -> String {
    let (mut codec, mut out, mut at) = (Codec::new(Proto::Kv, MAX), Vec::new(), 0);
    while let Decoded::Request { consumed } = codec.decode(&stream[at..], &mut out, store) {
        at += consumed;
    }
    assert_eq!(at, stream.len(), "every request is whole");
    String::from_utf8(out).unwrap()
}
