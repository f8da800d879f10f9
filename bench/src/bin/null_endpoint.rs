//! `null-endpoint`: the benchmark's null AWS endpoint as a standalone server, for measuring
//! or profiling a kinarch command by hand, e.g.
//!
//! ```text
//! null-endpoint --items 100000 --keys 10000 &      # prints http://127.0.0.1:PORT
//! AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x \
//!   AWS_SECRET_ACCESS_KEY=x valgrind --tool=callgrind target/release/kinarch scan s -q >/dev/null
//! ```
//!
//! Counts per operation are printed on Ctrl-C / SIGTERM.

use kinarch_bench::null_endpoint::{Dataset, NullEndpoint};

fn main() {
    let mut dataset = Dataset::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| fail(&format!("{arg} needs a whole number")))
        };
        match arg.as_str() {
            "--items" => dataset.items = number(),
            "--keys" => dataset.keys = number().max(1),
            "--payload-bytes" => dataset.payload_bytes = number(),
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let endpoint = NullEndpoint::start(runtime.handle()).await;
        endpoint.set_dataset(dataset);
        println!("{}", endpoint.endpoint());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        for (op, count) in endpoint.counts() {
            eprintln!(
                "{op}: {} requests, {} entries",
                count.requests, count.entries
            );
        }
    });
}

fn fail(problem: &str) -> ! {
    eprintln!(
        "null-endpoint: {problem}\nusage: null-endpoint [--items N] [--keys K] [--payload-bytes B]"
    );
    std::process::exit(2)
}
