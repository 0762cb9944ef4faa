"""The consensus mode: the coordinator steps through the readers' disagreements and decides them."""
