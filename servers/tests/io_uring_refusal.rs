//! Where io_uring is refused, the `io-uring` model says why in one line and exits 1; it never
//! listens and never crashes. The refusal here is a real one: the server runs under a seccomp
//! filter that fails `io_uring_setup` with `EPERM`, as Docker's default profile does.

#![cfg(target_os = "linux")]

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::process::{BIN, Process};

/// Install, in the calling process, a seccomp filter under which `io_uring_setup` fails with
/// `EPERM` and every other system call is allowed.
fn refuse_io_uring_setup() -> std::io::Result<()> {
    // A classic BPF program over `struct seccomp_data`, whose first field is the call number.
    let number = libc::SYS_io_uring_setup as u32;
    let program = [
        libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: number,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: prctl with plain integer arguments, then with a pointer to a program that lives
    // until the call returns (the kernel copies it).
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog)
                != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn a_refused_io_uring_is_one_line_and_exit_1() {
    let mut command = Command::new(BIN);
    command
        .args(["--model", "io-uring", "--proto", "echo-line"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes system calls.
    unsafe { command.pre_exec(refuse_io_uring_setup) };
    let mut process = Process { child: command.spawn().expect("start the server binary") };
    // A server that does not refuse would listen for ever: `wait_within` kills it then.
    let status = process.wait_within(Duration::from_secs(10));
    let (mut out, mut err) = (String::new(), String::new());
    process.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    process.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "exit status 1: {err}");
    assert!(out.is_empty(), "nothing on stdout, no `listening on`: {out:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains("io-uring is unavailable here"), "{err}");
    assert!(err.contains("seccomp") || err.contains("io_uring_disabled"), "names the reason: {err}");
}

#[test]
fn where_io_uring_works_the_same_server_listens() {
    // The control for the test above: without the filter, the same command serves, unless this
    // machine refuses io_uring on its own, which the check reports (and this test then skips).
    if support::unavailable_here(servers::Model::IoUring) {
        return;
    }
    let (_server, addr) = Process::start(&["--model", "io-uring", "--proto", "echo-line"]);
    let mut client = support::connect(addr);
    std::io::Write::write_all(&mut client, b"ping\n").unwrap();
    let mut reply = [0u8; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ping\n");
}
