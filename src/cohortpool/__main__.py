from cohortpool.cli import main

main()
