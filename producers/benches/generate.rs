//! The simulator alone: generating `sales simulate`'s events and Avro-encoding them, with no store
//! and no Kafka. `simulate` cannot outrun this; `bench-sales` prints it beside the whole pipeline.
//!
//! Usage: cargo bench -p edison-sales --bench generate [-- ORDERS]   (default 100000)

use std::time::Instant;

use edison_sales::simulate::Simulation;
use edison_sales::SimulateOptions;
use edison_schemas::Codec;

fn main() {
    let orders = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(100_000);
    let codec = Codec::new().expect("the order schema parses");
    let options = SimulateOptions { orders, seed: 1, ..SimulateOptions::default() };
    let started = Instant::now();
    let (mut events, mut bytes) = (0u64, 0usize);
    for transition in Simulation::new(&options).expect("valid options") {
        if let Some(event) = transition.event() {
            bytes += codec.encode(&event).expect("simulated events encode").len();
        }
        events += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{orders} orders, {events} events, {bytes} bytes encoded");
    println!("generate + encode: {:.0} events/s", events as f64 / elapsed);
}
