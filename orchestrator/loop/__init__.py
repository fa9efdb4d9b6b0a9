"""The search loop: controller, trials, checkpoint, launch ledger, polling, leaderboard."""
