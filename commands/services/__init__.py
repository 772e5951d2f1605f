"""What the commands do, apart from how they are asked: sessions, schedule, ledger check, setup."""
