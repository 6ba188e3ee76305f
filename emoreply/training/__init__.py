"""What train/ runs: FER and DailyDialog data, tokenizer training, the emotion judge, metrics, model cards and
run state. The runtime (app.py and the rest of emoreply) never imports it: tests/test_runtime_imports.py."""
