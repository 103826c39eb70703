"""Local runs: the real handlers driven with AWS-shaped events against an in-process AWS emulator."""
