@echo off
rem Runs bobosync once; for Windows Task Scheduler (run_bobo_windows.ps1 does the same in PowerShell).
rem Python: .venv\Scripts\python.exe, else "py -3", else "python". Arguments are passed through.
rem Output goes to logs\wrapper_YYYY-MM-DD.log. Exit code: the engine's
rem (0 done or nothing to do, 1 something left for the next run, 2 configuration error, 3 a person must act).
rem Overlapping runs need no check here: the engine holds its own lock.
rem Every echo to the log has its redirection first (>>"file" echo ...): in "echo ... code 2>> file" cmd
rem reads the digit as a handle number (2>>, stderr) and the line never reaches the log. The engine's line
rem keeps it last, after a space, which no argument can join (Wine's cmd cannot start a command after 2>&1).
setlocal EnableExtensions
set "PROJECT_DIR=%~dp0"
set "ENGINE_DIR=%PROJECT_DIR%bobosync"
set "LOG_DIR=%PROJECT_DIR%logs"
if not exist "%LOG_DIR%" mkdir "%LOG_DIR%"

rem The date from PowerShell, so the name does not depend on the regional date format.
set "TODAY="
for /f "usebackq delims=" %%d in (`powershell -NoProfile -NonInteractive -Command "Get-Date -Format yyyy-MM-dd" 2^>nul`) do set "TODAY=%%d"
if not defined TODAY set "TODAY=undated"
set "WRAPPER_LOG=%LOG_DIR%\wrapper_%TODAY%.log"
set "PYTHONIOENCODING=utf-8"

set "PY_CMD="
if exist "%PROJECT_DIR%.venv\Scripts\python.exe" set PY_CMD="%PROJECT_DIR%.venv\Scripts\python.exe"
if not defined PY_CMD (
    where py >nul 2>&1 && set "PY_CMD=py -3"
)
if not defined PY_CMD (
    where python >nul 2>&1 && set "PY_CMD=python"
)
if not defined PY_CMD (
    >>"%WRAPPER_LOG%" echo %TODAY% %TIME% ERROR no Python found: install Python 3.9 or newer, or create .venv
    echo No Python found: install Python 3.9 or newer, or create .venv ^(windows_scheduler_setup.md^)
    exit /b 2
)

>>"%WRAPPER_LOG%" echo %TODAY% %TIME% START %PY_CMD% bobo_processor.py %*
pushd "%ENGINE_DIR%"
%PY_CMD% bobo_processor.py %* >>"%WRAPPER_LOG%" 2>&1
set "RC=%ERRORLEVEL%"
popd
>>"%WRAPPER_LOG%" echo %TODAY% %TIME% END exit code %RC%
echo bobosync exit code %RC% (output in %WRAPPER_LOG%)
exit /b %RC%
