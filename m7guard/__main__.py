from m7guard.cli import main

main()
