<#
.SYNOPSIS
    Runs bobosync once; the command Windows Task Scheduler starts every minute.

.DESCRIPTION
    Uses the project's virtual environment (.venv\Scripts\python.exe) when present,
    else "py -3", else "python". Passes every argument through to
    bobosync\bobo_processor.py, appends the run's output to one wrapper log per day,
    wrapper_YYYY-MM-DD.log in LOG_DIRECTORY, and exits with the engine's exit code:
    0 done or nothing to do, 1 something left for the next run, 2 configuration error,
    3 a person must act.
    LOG_DIRECTORY is read as the run reads it (bobosync\.env, the environment, --env-file):
    "bobo_processor.py --wrapper-logs" with the run's arguments says where it is, and deletes
    wrapper logs older than LOG_PURGE_DAYS days. When it cannot say, the log goes to <project>\logs.
    Overlapping runs need no check here: the engine holds its own lock.
    Works on Windows PowerShell 5.1 and PowerShell 7.

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File run_bobo_windows.ps1
.EXAMPLE
    .\run_bobo_windows.ps1 --status
#>
$ErrorActionPreference = 'Continue'
$ProjectDir = Split-Path -Parent $MyInvocation.MyCommand.Path
$EngineDir = Join-Path $ProjectDir 'bobosync'
$LogDir = Join-Path $ProjectDir 'logs'  # unless bobo_processor.py says where LOG_DIRECTORY is
$Today = Get-Date -Format 'yyyy-MM-dd'

# The Python to use: the project's venv, else the py launcher, else python on PATH.
$VenvPython = Join-Path $ProjectDir '.venv\Scripts\python.exe'
$Python = $null
$PythonArgs = @()
if (Test-Path -LiteralPath $VenvPython) {
    $Python = $VenvPython
} elseif (Get-Command py -ErrorAction SilentlyContinue) {
    $Python = 'py'
    $PythonArgs = @('-3')
} elseif (Get-Command python -ErrorAction SilentlyContinue) {
    $Python = 'python'
}

# LOG_DIRECTORY=<folder> and TODAY=<date>, on standard output only when the folder is ready.
if ($Python) {
    Push-Location -LiteralPath $EngineDir
    try {
        $Answer = & $Python @PythonArgs 'bobo_processor.py' '--wrapper-logs' @args 2>$null
        if ($LASTEXITCODE -eq 0) {
            $Found = @{}
            foreach ($Line in @($Answer)) {
                $Parts = ([string]$Line) -split '=', 2
                if ($Parts.Count -eq 2) { $Found[$Parts[0]] = $Parts[1] }
            }
            if ($Found['LOG_DIRECTORY'] -and $Found['TODAY']) {
                $LogDir = $Found['LOG_DIRECTORY']
                $Today = $Found['TODAY']
            }
        }
    } catch {
        # no answer: the log stays in <project>\logs
    } finally {
        Pop-Location
    }
}
if (-not (Test-Path -LiteralPath $LogDir)) {
    New-Item -ItemType Directory -Path $LogDir -Force | Out-Null
}
$WrapperLog = Join-Path $LogDir ('wrapper_' + $Today + '.log')

function Write-WrapperLog([string]$Message) {
    $line = (Get-Date -Format 'yyyy-MM-dd HH:mm:ss') + ' ' + $Message
    Add-Content -LiteralPath $WrapperLog -Value $line -Encoding UTF8
}

if (-not $Python) {
    Write-WrapperLog 'ERROR no Python found: install Python 3.9 or newer, or create .venv (windows_scheduler_setup.md)'
    Write-Output 'No Python found: install Python 3.9 or newer, or create .venv (windows_scheduler_setup.md)'
    exit 2
}

$env:PYTHONIOENCODING = 'utf-8'
$Started = Get-Date
Write-WrapperLog ('START ' + $Python + ' ' + ($PythonArgs -join ' ') + ' bobo_processor.py ' + ($args -join ' '))
Push-Location -LiteralPath $EngineDir
try {
    # 2>&1 keeps the engine's messages; each line becomes a string for the log.
    $Output = & $Python @PythonArgs 'bobo_processor.py' @args 2>&1 | ForEach-Object { $_.ToString() }
    $ExitCode = $LASTEXITCODE
} finally {
    Pop-Location
}
if ($null -eq $ExitCode) { $ExitCode = 1 }
if ($Output) {
    Add-Content -LiteralPath $WrapperLog -Value $Output -Encoding UTF8
    $Output | Write-Output
}
$Seconds = [math]::Round(((Get-Date) - $Started).TotalSeconds, 1)
Write-WrapperLog ('END exit code ' + $ExitCode + ' after ' + $Seconds + ' s')
exit $ExitCode
