#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| canh_fuzz::run_flows(10, data));
