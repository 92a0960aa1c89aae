//! The `fairgate-mock` program: its flags, its one line on stdout, its stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn the_program_prints_where_it_listens_and_stops_on_sigterm() {
    let mut mock = Command::new(env!("CARGO_BIN_EXE_fairgate-mock"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--name",
            "pool_a",
            "--slots",
            "2",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(mock.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(!addr.ends_with(":0"), "the real port: {addr}");

    let mut connection = TcpStream::connect(addr).unwrap();
    connection
        .write_all(b"GET /mock/stats HTTP/1.1\r\nhost: mock\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-mock-server: pool_a"), "{answer}");
    assert!(answer.contains("\"slots\":2"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &mock.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(mock.wait().unwrap().success());
}
